// What alert rules cost the indexer: one backlog of the simulator's detections, indexed by five
// fresh indexers in turn (the order rotates from round to round), each with its own store, alerts
// topic and rules changelog: the built-in rule alone, 1,000 broad rules, 1,000 narrow rules, the
// broad rules matching nothing, one watch list of 100,000 entries, 3 rules matching every detection
// (the broad rules' alerts without their number). Then the matcher alone on the
// same rule sets. Run by bench/ingest.ts.
import { randomUUID } from 'node:crypto'
import {
  builtinRule,
  createRuleIndex,
  type MatchableDetection,
  RULES_TOPIC_CONFIG,
  type Rule,
  ruleRecord,
} from '@intellisite/alert-rules'
import { categoryTokens, type DetectionsRepository, normalizeKey } from '@intellisite/detections-store'
import { CompressionTypes, type Kafka, Partitioners } from 'kafkajs'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { createDetectionGenerator, encodeDetection } from '../../producer/src/detection-generator.js'
import { loadConfig } from '../src/config.js'
import { createIndexer } from '../src/indexer.js'
import { createIndexerMetrics } from '../src/metrics.js'
import { benchSettings } from './bench-settings.js'
import {
  MIX_DESCRIPTION,
  matchEverything,
  NARROW_DESCRIPTION,
  narrowRules,
  thousandRules,
  unmatchable,
  watchList,
} from './rule-sets.js'

export interface RulesCostOptions {
  kafka: Kafka
  count: number
  rounds: number
  partitions: number
  /** Which rule sets besides the built-in rule alone (default: all). */
  sets?: readonly string[]
  /** A fresh, empty detections store named `name`, and how to drop it. */
  freshStore(name: string): Promise<{ repository: DetectionsRepository; drop(): Promise<void> }>
}

interface Variant {
  key: string
  label: string
  rules: Rule[]
}

// The built-in rule as benchSettings leaves it: the indexer's default, for the matcher alone too.
const SUSPICIOUS_VEHICLE = loadConfig({}).suspiciousVehicle

function variants(): Variant[] {
  const thousand = thousandRules()
  return [
    { key: 'builtin', label: 'built-in rule only', rules: [] },
    { key: 'thousand', label: '1,000 rules', rules: thousand },
    { key: 'narrow', label: '1,000 narrow rules', rules: narrowRules() },
    { key: 'nomatch', label: '1,000 rules matching nothing', rules: unmatchable(thousand) },
    { key: 'watchlist', label: 'watch list of 100,000 entries', rules: [watchList()] },
    { key: 'everything', label: '3 rules matching every detection', rules: matchEverything() },
  ]
}

interface Run {
  seconds: number
  loadSeconds: number
  alerts: number
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

async function produceBacklog(kafka: Kafka, topic: string, count: number, partitions: number, seed: string) {
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  })
  await producer.connect()
  const next = createDetectionGenerator({ seed })
  try {
    for (let start = 0; start < count; start += 6_000) {
      const timestamp = String(Date.now())
      const messages = Array.from({ length: Math.min(6_000, count - start) }, (_, i) => ({
        value: encodeDetection(next()),
        partition: (start + i) % partitions,
        timestamp,
      }))
      await producer.send({ topic, messages })
    }
  } finally {
    await producer.disconnect()
  }
}

async function publish(kafka: Kafka, topic: string, rules: readonly Rule[]) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    for (let start = 0; start < rules.length; start += 250) {
      await producer.send({
        topic,
        compression: CompressionTypes.GZIP,
        messages: rules.slice(start, start + 250).map(ruleRecord),
      })
    }
  } finally {
    await producer.disconnect()
  }
}

/** One fresh indexer over the backlog with one rule set: from ready (rules loaded) to every offset committed. */
async function indexBacklog(
  options: RulesCostOptions,
  backlog: string,
  variant: Variant,
  id: string,
): Promise<Run> {
  const { kafka, count, partitions } = options
  const name = `${variant.key}-${id}`
  const topics = {
    detections: backlog,
    alerts: `bench-rules-alerts-${name}`,
    dlq: `bench-rules-dlq-${name}`,
    rules: `bench-rules-changelog-${name}`,
  }
  const groupId = `bench-rules-${name}`
  const admin = kafka.admin()
  await admin.connect()
  const store = await options.freshStore(`bench_rules_${variant.key}_${id.replaceAll('-', '')}`)
  try {
    await admin.createTopics({
      topics: [{ topic: topics.rules, numPartitions: 1, configEntries: [...RULES_TOPIC_CONFIG] }],
      waitForLeaders: true,
    })
    await publish(kafka, topics.rules, variant.rules)
    await store.repository.ensureIndexes()
    const metrics = createIndexerMetrics(new Registry())
    const indexer = createIndexer({
      kafka,
      repository: store.repository,
      config: benchSettings(topics, groupId, partitions),
      logger: pino({ level: 'silent' }),
      metrics,
    })
    const tLoad = performance.now()
    await indexer.start()
    while (!indexer.ready()) await new Promise((r) => setTimeout(r, 5))
    const t0 = performance.now()
    for (;;) {
      const offsets = await admin.fetchOffsets({ groupId, topics: [backlog] })
      const committed = (offsets[0]?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0)
      if (committed === count) break
      if (committed > count) throw new Error(`committed ${committed} of ${count}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    const seconds = (performance.now() - t0) / 1000
    await indexer.stop()
    const alerts = (await metrics.read.alerts.get()).values.reduce((s, v) => s + v.value, 0)
    return { seconds, loadSeconds: (t0 - tLoad) / 1000, alerts }
  } finally {
    await admin.deleteTopics({ topics: [topics.alerts, topics.dlq, topics.rules] }).catch(() => {})
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect()
    await store.drop().catch(() => {})
  }
}

interface MatcherRow {
  detectionsPerSecond: number
  alerting: number
  rulesPerAlert: number
}

/**
 * The rule index alone over the same kind of detections: detections matched per second, the median
 * of 5 passes per rule set, interleaved, after a warm-up pass over every set.
 */
function matcherAlone(sets: readonly Variant[], detections: readonly MatchableDetection[]) {
  const indexes = sets.map((v) => {
    const index = createRuleIndex()
    index.upsert(builtinRule(SUSPICIOUS_VEHICLE))
    for (const rule of v.rules) index.upsert(rule)
    return index
  })
  const pass = (index: (typeof indexes)[number]) => {
    let alerting = 0
    let matched = 0
    const t0 = performance.now()
    for (const d of detections) {
      const found = index.match(d)
      if (found === null) continue
      alerting++
      matched += found.rules.length
    }
    return { seconds: (performance.now() - t0) / 1000, alerting, matched }
  }
  for (const index of indexes) pass(index)
  const seconds: number[][] = sets.map(() => [])
  const rows: MatcherRow[] = []
  for (let round = 0; round < 5; round++) {
    indexes.forEach((index, i) => {
      const p = pass(index)
      seconds[i]!.push(p.seconds)
      rows[i] = {
        detectionsPerSecond: 0,
        alerting: p.alerting / detections.length,
        rulesPerAlert: p.matched / Math.max(1, p.alerting),
      }
    })
  }
  return new Map(
    sets.map((v, i) => [
      v.key,
      { ...rows[i]!, detectionsPerSecond: detections.length / median(seconds[i]!) },
    ]),
  )
}

/** Runs every round and the matcher alone; returns the section's notes and tables in markdown. */
export async function rulesCost(options: RulesCostOptions): Promise<string> {
  const { kafka, count, rounds, partitions } = options
  const sets = variants().filter((v) => v.key === 'builtin' || !options.sets || options.sets.includes(v.key))
  const runs = new Map<string, Run[]>(sets.map((v) => [v.key, []]))
  for (let round = 0; round < rounds; round++) {
    const id = randomUUID()
    const backlog = `bench-rules-det-${id}`
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.createTopics({
        topics: [{ topic: backlog, numPartitions: partitions }],
        waitForLeaders: true,
      })
      await produceBacklog(kafka, backlog, count, partitions, `rules-cost-${round}`)
      // Rotated, so that no rule set always runs first (or last) on a machine that drifts.
      const order = sets.map((_, i) => sets[(i + round) % sets.length]!)
      for (const variant of order)
        runs.get(variant.key)!.push(await indexBacklog(options, backlog, variant, id))
    } finally {
      await admin.deleteTopics({ topics: [backlog] }).catch(() => {})
      await admin.disconnect()
    }
    process.stderr.write(`rules cost: round ${round + 1}/${rounds} done\n`)
  }

  const next = createDetectionGenerator({ seed: 'matcher' })
  // 200,000 at the default size; fewer for a smoke run.
  const matcherSize = Math.min(200_000, Math.max(20_000, 2 * count))
  const detections: MatchableDetection[] = Array.from({ length: matcherSize }, () => {
    const d = next()
    return {
      makeKey: normalizeKey(d.Make),
      modelKey: normalizeKey(d.Model),
      categoryTokens: categoryTokens(d.Category),
      year: d.Year,
    }
  })
  const matcher = matcherAlone(sets, detections)

  const rate = (r: Run) => count / r.seconds
  const base = runs.get('builtin')!
  const lines = [
    '',
    `Rules cost: a backlog of ${count} of the simulator's detections (its catalogue, 22 % exactly SUV), ` +
      `${partitions} partitions, indexed in each of ${rounds} rounds by ${sets.length} fresh indexers in turn (order ` +
      'rotated per round), each with its own store, alerts topic and rules changelog, timed from ready ' +
      `(rules loaded) until every offset is committed. Rule sets: the built-in rule (SUSPICIOUS_VEHICLE=${SUSPICIOUS_VEHICLE}) ` +
      `alone; 1,000 rules (${MIX_DESCRIPTION}); 1,000 narrow rules (${NARROW_DESCRIPTION}); ` +
      'the broad 1,000 rules moved to model years 2190–2199, ' +
      'so that every detection meets them and none matches (matching without the extra alerts); one watch ' +
      'list of 100,000 entries (1 in 1,000 a catalogue ' +
      'model within a few years), one gzip-compressed record; 3 shared rules on model years alone that every ' +
      "detection matches (about the 1,000 rules' alerts, with 3 rules). The built-in rule is in every set. " +
      'Target: ≥ 0.9 × the built-in rule alone.',
    '',
    '| round | rules | det/s | ÷ built-in only | alerts per 100 det | rules load s |',
    '|---|---|---:|---:|---:|---:|',
  ]
  for (let round = 0; round < rounds; round++) {
    for (const v of sets) {
      const r = runs.get(v.key)![round]!
      lines.push(
        `| ${round + 1} | ${v.label} | ${Math.round(rate(r))} | ${(rate(r) / rate(base[round]!)).toFixed(2)} | ` +
          `${((100 * r.alerts) / count).toFixed(1)} | ${r.loadSeconds.toFixed(2)} |`,
      )
    }
  }
  for (const v of sets) {
    const rs = runs.get(v.key)!
    const ratios = rs.map((r, i) => rate(r) / rate(base[i]!))
    lines.push(
      `| **median** | ${v.label} | ${Math.round(median(rs.map(rate)))} | ${median(ratios).toFixed(2)} | ` +
        `${median(rs.map((r) => (100 * r.alerts) / count)).toFixed(1)} | ${median(rs.map((r) => r.loadSeconds)).toFixed(2)} |`,
    )
  }
  const broad = runs.get('thousand')
  const everything = runs.get('everything')
  if (broad && everything) {
    // The same alert output with 3 rules or with 1,000: what the rules cost apart from the alerts.
    const ratios = broad.map((r, i) => rate(r) / rate(everything[i]!))
    lines.push(
      '',
      `1,000 rules ÷ 3 rules matching every detection, round by round: ${ratios.map((x) => x.toFixed(2)).join(', ')} ` +
        `(median ${median(ratios).toFixed(2)}).`,
    )
  }
  lines.push(
    '',
    `The matcher alone (\`RuleIndex.match\`, one thread), ${detections.length} detections of the same ` +
      'generator, median of 5 passes per rule set, interleaved, after a warm-up:',
    '',
    '| rules | matches/s | alerting | rules per alert |',
    '|---|---:|---:|---:|',
    ...sets.map((v) => {
      const m = matcher.get(v.key)!
      return `| ${v.label} | ${Math.round(m.detectionsPerSecond)} | ${(100 * m.alerting).toFixed(1)} % | ${m.rulesPerAlert.toFixed(2)} |`
    }),
  )
  return lines.join('\n')
}
