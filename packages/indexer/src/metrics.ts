import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { StalledPartition } from './partition-health.js'

export interface PartitionProgress {
  /** Messages between the last processed offset and the partition's high watermark. */
  lagMessages: number
  /** Record timestamp (epoch ms) of the last processed message. */
  lastTimestamp: number
}

/** What the rule index holds, read when metrics are scraped. */
export interface RulesHeld {
  rules: number
  watchlistEntries: number
}

/** A metric's values, without the means to change them. */
function reader<T extends { get(): unknown }>(metric: T): Pick<T, 'get'> {
  return { get: () => metric.get() } as Pick<T, 'get'>
}

/**
 * The indexer's counters, histograms and gauges, counted here only: the batch path and the rules
 * follower report what happened, this module decides what each event adds to which metric.
 */
export function createIndexerMetrics(registry: Registry) {
  const registers = [registry]
  const progress = new Map<string, PartitionProgress>()
  const assignedPartitions = new Map<string, ReadonlySet<number>>()
  let stalls: () => StalledPartition[] = () => []
  let rulesHeld: () => RulesHeld = () => ({ rules: 0, watchlistEntries: 0 })

  const consumed = new Counter({
    name: 'indexer_consumed_total',
    help: 'Detection records consumed from Kafka (valid or not)',
    registers,
  })
  const stored = new Counter({
    name: 'indexer_stored_total',
    help: 'Detections newly inserted into the store',
    registers,
  })
  const duplicates = new Counter({
    name: 'indexer_duplicates_total',
    help: 'Redelivered detections that were already stored',
    registers,
  })
  const alerts = new Counter({
    name: 'indexer_alerts_total',
    help: 'Alerts published in committed transactions',
    registers,
  })
  const deadLettered = new Counter({
    name: 'indexer_dead_lettered_total',
    help: 'Records sent to the dead-letter topic, by error code',
    labelNames: ['code'] as const,
    registers,
  })
  const storeRetries = new Counter({
    name: 'indexer_store_retries_total',
    help: 'Bulk writes retried because the store failed',
    registers,
  })
  const transactionsAborted = new Counter({
    name: 'indexer_transactions_aborted_total',
    help: 'Kafka transactions aborted (the batch is redelivered)',
    registers,
  })
  const bulkWriteSeconds = new Histogram({
    name: 'indexer_bulk_write_seconds',
    help: 'Latency of one successful bulk write of a batch into the store',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  new Gauge({
    name: 'indexer_consumer_lag_messages',
    help: 'Messages not yet processed, per partition',
    labelNames: ['topic', 'partition'] as const,
    registers,
    collect() {
      this.reset()
      for (const [key, p] of progress) {
        const [topic = '', partition = ''] = key.split('\u0000')
        this.set({ topic, partition }, p.lagMessages)
      }
    },
  })
  new Gauge({
    name: 'indexer_consumer_lag_seconds',
    help: 'Now minus the record timestamp of the last processed message, per partition (0 when caught up)',
    labelNames: ['topic', 'partition'] as const,
    registers,
    collect() {
      this.reset()
      const now = Date.now()
      for (const [key, p] of progress) {
        const [topic = '', partition = ''] = key.split('\u0000')
        this.set({ topic, partition }, p.lagMessages > 0 ? Math.max(0, (now - p.lastTimestamp) / 1000) : 0)
      }
    },
  })

  new Gauge({
    name: 'indexer_partition_stalled',
    help: 'Whether an owned partition is stalled: its batch keeps failing, or nothing committed for too long while records wait (see /readyz for why)',
    labelNames: ['topic', 'partition'] as const,
    registers,
    collect() {
      this.reset()
      for (const [topic, partitions] of assignedPartitions) {
        for (const partition of partitions) this.set({ topic, partition }, 0)
      }
      for (const stall of stalls()) this.set({ topic: stall.topic, partition: stall.partition }, 1)
    },
  })

  const ruleRecordsApplied = new Counter({
    name: 'indexer_rule_records_applied_total',
    help: 'Rule records read from the rules changelog and applied to the rule index, by kind (an upsert not newer than the version held changes nothing)',
    labelNames: ['kind'] as const,
    registers,
  })
  const ruleRecordsInvalid = new Counter({
    name: 'indexer_rule_records_invalid_total',
    help: 'Records on the rules changelog that are not a rule this indexer understands, or that name the built-in rule: skipped',
    registers,
  })
  new Gauge({
    name: 'indexer_rules',
    help: 'Alert rules held, the built-in one included, enabled or not',
    registers,
    collect() {
      this.set(rulesHeld().rules)
    },
  })
  new Gauge({
    name: 'indexer_rule_watchlist_entries',
    help: 'Watch-list entries of the enabled rules held',
    registers,
    collect() {
      this.set(rulesHeld().watchlistEntries)
    },
  })

  return {
    /** A batch's records as consumed, decodable or not. */
    consumed(records: number): void {
      consumed.inc(records)
    },
    /** Times one bulk write of a batch: call the returned function once the store accepted it. */
    startStoreWrite(): () => void {
      return bulkWriteSeconds.startTimer()
    },
    storeRetried(): void {
      storeRetries.inc()
    },
    transactionAborted(): void {
      transactionsAborted.inc()
    },
    /** A batch stored and its transaction committed. */
    batchCommitted(
      written: { inserted: number; duplicates: number },
      delivered: { alertCount: number; deadLetterCodes: readonly string[] } | null,
    ): void {
      stored.inc(written.inserted)
      duplicates.inc(written.duplicates)
      if (!delivered) return
      alerts.inc(delivered.alertCount)
      for (const code of delivered.deadLetterCodes) deadLettered.inc({ code })
    },
    ruleRecordApplied(kind: string): void {
      ruleRecordsApplied.inc({ kind })
    },
    ruleRecordInvalid(): void {
      ruleRecordsInvalid.inc()
    },
    /** The counts so far, for readers in the same process (tests, benchmarks); only this module counts. */
    read: {
      consumed: reader(consumed),
      stored: reader(stored),
      duplicates: reader(duplicates),
      alerts: reader(alerts),
      deadLettered: reader(deadLettered),
      storeRetries: reader(storeRetries),
      transactionsAborted: reader(transactionsAborted),
      bulkWriteSeconds: reader(bulkWriteSeconds),
      ruleRecordsApplied: reader(ruleRecordsApplied),
      ruleRecordsInvalid: reader(ruleRecordsInvalid),
    },
    recordProgress(topic: string, partition: number, value: PartitionProgress): void {
      progress.set(`${topic}\u0000${partition}`, value)
    },
    /** Forgets the lag of partitions this member no longer owns (another member reports them). */
    retainPartitions(topic: string, assigned: ReadonlySet<number>): void {
      assignedPartitions.set(topic, assigned)
      for (const key of progress.keys()) {
        const [t, p] = key.split('\u0000')
        if (t === topic && !assigned.has(Number(p))) progress.delete(key)
      }
    },
    /** Where the stalled-partition gauge reads from. */
    observeStalls(source: () => StalledPartition[]): void {
      stalls = source
    },
    /** Where the rule gauges read from. */
    observeRules(source: () => RulesHeld): void {
      rulesHeld = source
    },
  }
}

export type IndexerMetrics = ReturnType<typeof createIndexerMetrics>
