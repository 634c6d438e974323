import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import {
  BUILTIN_RULE_ID,
  type DecodedRuleRecord,
  decodeRuleRecord,
  RULES_MAX_MESSAGE_BYTES,
  RULES_TOPIC_CONFIG,
  type RuleIndex,
} from '@intellisite/alert-rules'
import { ensureTopics, growingDelay, retry } from '@intellisite/common'
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs'
import type { Logger } from 'pino'
import type { IndexerMetrics } from '../metrics.js'

export interface RulesFollowerOptions {
  kafka: Kafka
  /** Connected, and closed by the caller after `stop`. */
  admin: Admin
  topic: string
  replicationFactor: number
  /** The follower's consumer group is this prefix plus the host, the pid and a random suffix. */
  groupPrefix: string
  index: Pick<RuleIndex, 'upsert' | 'remove'>
  metrics: Pick<IndexerMetrics, 'ruleRecordApplied' | 'ruleRecordInvalid'>
  logger: Logger
  /** Waits before a consumer kafkajs gave up on is replaced; each is longer than the last. */
  restart?: { initialMs: number; maxMs: number }
}

const BUILTIN_FROM_TOPIC =
  'names the built-in rule, which SUSPICIOUS_VEHICLE configures and no changelog record may change'

/**
 * Keeps the rule index in step with the rules changelog: reads the topic from its start to the end
 * offsets it had when `start` was called, then follows it for as long as the indexer runs.
 *
 * Every indexer reads every rule, so the follower is not a member of the indexers' group: kafkajs
 * has no manual assignment, and a group of its own per process gives it every partition. It
 * commits nothing; after a rejoin it seeks back to where it was, so a changelog is never replayed
 * over newer state (a replayed rule then its tombstone would bring a deleted rule back for a while).
 *
 * The end offsets are reachable: compaction never touches the active segment, which holds the
 * last record, and a batch of transaction markers alone still moves the position (kafkajs
 * reports it in END_BATCH_PROCESS).
 */
export function createRulesFollower(options: RulesFollowerOptions) {
  const { kafka, admin, topic, index, metrics } = options
  const logger = options.logger.child({ component: 'rules-follower', topic })
  const groupId = `${options.groupPrefix}-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
  /** Next offset to apply, per partition. */
  const position = new Map<number, number>()
  /** The end offsets to reach before the rules count as loaded. */
  const end = new Map<number, number>()
  let consumer: Consumer | undefined
  let loaded = false
  let stopping = false
  let joins = 0
  let restarts = 0
  let restartTimer: NodeJS.Timeout | undefined
  const restartDelays = options.restart ?? { initialMs: 1_000, maxMs: 30_000 }
  let recordsAtLoad = 0
  let startedAt = 0
  let settle: ((loaded: boolean) => void) | undefined
  const whenLoaded = new Promise<boolean>((resolve) => {
    settle = resolve
  })

  function checkLoaded(): void {
    if (loaded) return
    for (const [partition, offset] of end) {
      if ((position.get(partition) ?? 0) < offset) return
    }
    loaded = true
    logger.info(
      { records: recordsAtLoad, ms: Date.now() - startedAt, groupId },
      'alert rules loaded; following the changelog',
    )
    settle?.(true)
  }

  function advance(partition: number, next: number): void {
    if (next > (position.get(partition) ?? 0)) position.set(partition, next)
    checkLoaded()
  }

  /** The built-in rule comes from the configuration only: a record naming it is not taken. */
  function decode(message: KafkaMessage): DecodedRuleRecord {
    const decoded = decodeRuleRecord(message.key, message.value)
    const id = decoded.kind === 'upsert' ? decoded.rule.id : decoded.kind === 'delete' ? decoded.id : null
    return id === BUILTIN_RULE_ID ? { kind: 'invalid', key: id, reason: BUILTIN_FROM_TOPIC } : decoded
  }

  function apply(partition: number, message: KafkaMessage): void {
    const record = decode(message)
    if (!loaded) recordsAtLoad++
    if (record.kind === 'invalid') {
      metrics.ruleRecordInvalid()
      logger.warn(
        { key: record.key, partition, offset: message.offset, reason: record.reason },
        'rule record skipped',
      )
      return
    }
    metrics.ruleRecordApplied(record.kind)
    const level = loaded ? 'info' : 'debug'
    if (record.kind === 'delete') {
      const removed = index.remove(record.id)
      logger[level]({ ruleId: record.id, removed, partition, offset: message.offset }, 'alert rule deleted')
      return
    }
    const { rule } = record
    const changed = index.upsert(rule)
    logger[level](
      {
        ruleId: rule.id,
        version: rule.version,
        enabled: rule.enabled,
        entries: rule.entries.length,
        changed,
        partition,
        offset: message.offset,
      },
      changed ? 'alert rule applied' : 'alert rule not newer than the version held: ignored',
    )
  }

  async function eachBatch({ batch }: EachBatchPayload): Promise<void> {
    const { partition } = batch
    for (const message of batch.messages) {
      const offset = Number(message.offset)
      if (offset < (position.get(partition) ?? 0)) continue
      apply(partition, message)
      position.set(partition, offset + 1)
    }
  }

  function seekAll(): void {
    if (!consumer) return
    for (const [partition, offset] of position) {
      try {
        consumer.seek({ topic, partition, offset: String(offset) })
      } catch (err) {
        logger.warn({ err, partition, offset }, 'seeking back after a rejoin')
      }
    }
  }

  /**
   * Creates the topic if needed and starts following it. Resolves true once the topic has been read
   * to its end, false if `stop` came first.
   */
  async function start(): Promise<boolean> {
    startedAt = Date.now()
    await ensureTopics(
      admin,
      [
        {
          topic,
          numPartitions: 1,
          replicationFactor: options.replicationFactor,
          configEntries: [...RULES_TOPIC_CONFIG],
        },
      ],
      logger,
    )
    // A topic created a moment ago may not have a leader yet: wait for one.
    const offsets = await retry(() => admin.fetchTopicOffsets(topic), {
      initialMs: 50,
      maxMs: 1_000,
      attempts: 20,
    })
    for (const { partition, low, high } of offsets) {
      position.set(partition, Number(low))
      end.set(partition, Number(high))
    }
    if (stopping) return false
    await follow()
    checkLoaded()
    return whenLoaded
  }

  async function follow(): Promise<void> {
    const c = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      // A whole watch list is one record: one fetch must be able to carry it.
      maxBytesPerPartition: RULES_MAX_MESSAGE_BYTES,
      maxBytes: RULES_MAX_MESSAGE_BYTES,
      // A new rule reaches the indexer as soon as it is written (the broker answers a waiting
      // fetch at once); the wait also bounds how long a stop waits for an idle fetch.
      maxWaitTimeInMs: 1_000,
      // The only member of its group: after a broker restart a rejoin waits for the old
      // membership to expire, so keep the session short.
      sessionTimeout: 10_000,
      heartbeatInterval: 3_000,
    })
    consumer = c
    c.on(c.events.GROUP_JOIN, () => {
      restarts = 0
      if (joins++ > 0) seekAll()
    })
    c.on(c.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === topic) advance(payload.partition, Number(payload.lastOffset) + 1)
    })
    c.on(c.events.CRASH, ({ payload }) => {
      logger.error({ err: payload.error, restart: payload.restart }, 'rules consumer crashed')
      if (!payload.restart) replace(c)
    })
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ autoCommit: false, eachBatch })
  }

  /**
   * kafkajs does not restart a consumer after a non-retriable error (e.g. its group coordinator
   * lookup while a broker is away). The rules held stay in use; a new consumer takes over from the
   * positions reached, and the rest of the indexer carries on meanwhile.
   */
  function replace(crashed: Consumer): void {
    if (stopping || consumer !== crashed || restartTimer !== undefined) return
    const waitMs = growingDelay(++restarts, restartDelays.initialMs, restartDelays.maxMs)
    logger.warn({ waitMs }, 'replacing the rules consumer')
    restartTimer = setTimeout(async () => {
      await crashed.disconnect().catch(() => undefined)
      restartTimer = undefined
      if (stopping) return
      try {
        await follow()
      } catch (err) {
        logger.error({ err }, 'starting a new rules consumer')
        if (consumer) replace(consumer)
      }
    }, waitMs)
    restartTimer.unref()
  }

  async function stop(): Promise<void> {
    if (stopping) return
    stopping = true
    clearTimeout(restartTimer)
    settle?.(false)
    await consumer?.disconnect()
    // Nothing was ever committed; remove the group so that restarts leave no trace on the broker.
    if (consumer) await admin.deleteGroups([groupId]).catch(() => undefined)
  }

  return {
    start,
    stop,
    /** The changelog has been read to the end it had at start: every rule then known is applied. */
    loaded: () => loaded,
    groupId,
  }
}

export type RulesFollower = ReturnType<typeof createRulesFollower>
