// What one alert costs the indexer's own thread, in process, without Kafka or a store: building
// its message (alertMessage), sizing it (planDelivery), and kafkajs encoding the produce requests
// that carry it (the record, its batch and CRC32C, the request's framing), in CPU time of this
// thread, over the alerts of 1,000 broad rules. Run with:
//   node --expose-gc --conditions=development --import tsx packages/indexer/bench/alert-encoding.ts [--count 50000] [--passes 15]
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { builtinRule, createRuleIndex, type RuleMatches } from '@intellisite/alert-rules'
import type { DetectionDocument } from '@intellisite/detections-store'
import type { Message } from 'kafkajs'
import { createDetectionGenerator, encodeDetection } from '../../producer/src/detection-generator.js'
import {
  alertMessage,
  type ClassifiedBatch,
  classifyRecords,
  type SourceRecord,
} from '../src/batch/classify-records.js'
import { planDelivery } from '../src/batch/delivery-plan.js'
import { loadConfig } from '../src/config.js'
import { thousandRules } from './rule-sets.js'

const require = createRequire(import.meta.url)
// KAFKAJS_DIR: another copy of kafkajs to measure instead, e.g. the folder `pnpm patch kafkajs` opens.
const kafkajs = process.env.KAFKAJS_DIR ?? 'kafkajs'
type Encoded = { buffer: Buffer }
const encodeRequest = require(`${kafkajs}/src/protocol/request.js`) as (args: {
  correlationId: number
  clientId: string
  request: { apiKey: number; apiVersion: number; encode(): Promise<Encoded> }
}) => Promise<Encoded>
const produceV7 = require(`${kafkajs}/src/protocol/requests/produce/v7/request.js`) as (args: object) => {
  apiKey: number
  apiVersion: number
  encode(): Promise<Encoded>
}
const groupMessagesPerPartition = require(`${kafkajs}/src/producer/groupMessagesPerPartition.js`) as (
  args: object,
) => Record<string, Message[]>
const { DefaultPartitioner } = require(`${kafkajs}/src/producer/partitioners/index.js`) as {
  DefaultPartitioner: () => (args: object) => number
}

const { values: args } = parseArgs({
  options: { count: { type: 'string' }, passes: { type: 'string' } },
})
const count = Number(args.count ?? 50_000)
const passes = Number(args.passes ?? 15)
const PARTITIONS = 6
const LIMITS = { alertsBatchBytes: 1_048_588, dlqBatchBytes: 1_048_588 }

const next = createDetectionGenerator({ seed: 'alert-encoding' })
const timestamp = String(Date.now())
const records: SourceRecord[] = Array.from({ length: count }, (_, i) => ({
  offset: String(i),
  timestamp,
  key: null,
  value: encodeDetection(next()),
}))

const index = createRuleIndex()
index.upsert(builtinRule(loadConfig({}).suspiciousVehicle))
for (const rule of thousandRules()) index.upsert(rule)

// Matched once: the passes below time what follows a match, not the decoding or the matching.
const matched: { document: DetectionDocument; matches: RuleMatches; record: SourceRecord }[] = []
let at = 0
classifyRecords(records, {
  topic: 'detections',
  partition: 0,
  match: (document) => {
    const matches = index.match(document)
    if (matches) matched.push({ document: document as DetectionDocument, matches, record: records[at]! })
    at++
    return matches
  },
  maxMessageBytes: 1_048_576,
  alertsPartitions: PARTITIONS,
  dlqPartitions: PARTITIONS,
})
const alerting = matched.length
const rulesPerAlert = matched.reduce((s, m) => s + m.matches.rules.length, 0) / Math.max(1, alerting)

/** The alerts as classifyRecords leaves them for planDelivery. */
function buildAlerts(): ClassifiedBatch {
  const context = { topic: 'detections', partition: 0, dlqPartition: 0, failedAt: new Date().toISOString() }
  const alerts = matched.map(({ document, matches, record }) => ({
    message: alertMessage(document, matches, 0),
    record,
  }))
  return { documents: [], alerts, deadLetters: [], deadLetterCodes: [], context }
}

const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionId, leader: 1 }))
const partitioner = DefaultPartitioner()

/** The bytes the transaction's sends put on the wire, as kafkajs builds them for a broker. */
async function encodeSends(chunks: readonly Message[][]): Promise<number> {
  let bytes = 0
  for (const messages of chunks) {
    const perPartition = groupMessagesPerPartition({
      topic: 'alerts',
      partitionMetadata,
      messages,
      partitioner,
    })
    const topicData = [
      {
        topic: 'alerts',
        partitions: Object.keys(perPartition).map((p) => ({
          partition: Number(p),
          firstSequence: 0,
          messages: perPartition[p]!,
        })),
      },
    ]
    const request = produceV7({
      acks: -1,
      timeout: 30_000,
      transactionalId: 'bench',
      producerId: 1,
      producerEpoch: 0,
      topicData,
    })
    bytes += (await encodeRequest({ correlationId: 1, clientId: 'bench', request })).buffer.length
  }
  return bytes
}

// With --expose-gc, each step starts from a collected heap rather than paying for the last one's garbage.
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
/** Milliseconds of this thread's CPU time: other processes on a shared machine do not count. */
const time = async (f: () => unknown) => {
  gc()
  const t0 = process.threadCpuUsage()
  await f()
  const t = process.threadCpuUsage(t0)
  return (t.user + t.system) / 1000
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const samples = { build: [] as number[], plan: [] as number[], encode: [] as number[] }
let wireBytes = 0
for (let pass = 0; pass <= passes; pass++) {
  let classified = buildAlerts()
  const buildMs = await time(() => {
    classified = buildAlerts()
  })
  let plan = planDelivery(classified, LIMITS)
  const planMs = await time(() => {
    plan = planDelivery(classified, LIMITS)
  })
  const encodeMs = await time(async () => {
    wireBytes = await encodeSends(plan.alertChunks)
  })
  if (pass === 0) continue // warm-up
  samples.build.push(buildMs)
  samples.plan.push(planMs)
  samples.encode.push(encodeMs)
}

const perAlert = (ms: number) => ((1000 * ms) / alerting).toFixed(2)
const row = (name: string, xs: number[]) =>
  `| ${name} | ${perAlert(median(xs))} | ${perAlert(Math.min(...xs))}–${perAlert(Math.max(...xs))} |`
const build = samples.build
const all = build.map((b, i) => b + samples.plan[i]! + samples.encode[i]!)
console.log(
  [
    `${count} detections, ${alerting} alerts (${((100 * alerting) / count).toFixed(1)} %), ` +
      `${rulesPerAlert.toFixed(2)} rules per alert, ${(wireBytes / alerting).toFixed(0)} wire bytes per alert; ` +
      `${passes} passes after a warm-up`,
    '',
    '| step | µs per alert (median) | range |',
    '|---|---:|---:|',
    row('build the message (alertMessage)', build),
    row('size and chunk (planDelivery)', samples.plan),
    row('kafkajs: partition, encode, CRC32C, frame', samples.encode),
    row('total', all),
  ].join('\n'),
)
