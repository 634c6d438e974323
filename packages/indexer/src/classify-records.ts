import type { MatchableDetection, RuleMatches } from '@intellisite/alert-rules'
import { buildAlert, type DetectionDocument, toDetectionDocument } from '@intellisite/detections-store'
import type { IHeaders, Message } from 'kafkajs'
import { type DecodeErrorCode, decodeDetection } from './decode-detection.js'

/** The parts of a consumed Kafka record the indexer needs (a kafkajs `KafkaMessage` fits). */
export interface SourceRecord {
  offset: string
  timestamp: string
  key: Buffer | null
  value: Buffer | null
  headers?: IHeaders
}

export interface ClassifyOptions {
  topic: string
  partition: number
  /** Every rule a detection matches (a rule index's `match`), or null when none does. */
  match: (detection: MatchableDetection) => RuleMatches | null
  maxMessageBytes: number
  alertsPartitions: number
  dlqPartitions: number
  /** Time stamped on dead letters, injectable for tests. */
  now?: Date
}

/** Why a record went to the dead-letter topic: it could not be decoded, or its alert cannot be sent. */
export type DeadLetterCode = DecodeErrorCode | 'ALERT_TOO_LARGE'

export interface DeadLetterContext {
  topic: string
  partition: number
  dlqPartition: number
  /** ISO time stamped on the dead letters of one batch. */
  failedAt: string
}

export interface PendingAlert {
  /** Ready to send to the alerts topic: keyed by detection id, on a partition derived from the source's. */
  message: Message
  /** The detection record it came from, dead-lettered in its place if the alert can never be sent. */
  record: SourceRecord
}

export interface ClassifiedBatch {
  documents: DetectionDocument[]
  alerts: PendingAlert[]
  deadLetters: Message[]
  deadLetterCodes: DeadLetterCode[]
  context: DeadLetterContext
}

/**
 * Turns one partition's records into the store writes, the alerts and the dead letters, in record
 * order. Pure: the delivery code decides when each of them is written.
 */
export function classifyRecords(records: readonly SourceRecord[], options: ClassifyOptions): ClassifiedBatch {
  const { topic, partition, match } = options
  // Every record of a source partition lands on one alerts partition, so per-partition order
  // holds end to end (Kafka only orders within a partition).
  const alertPartition = partition % options.alertsPartitions
  const context: DeadLetterContext = {
    topic,
    partition,
    dlqPartition: partition % options.dlqPartitions,
    failedAt: (options.now ?? new Date()).toISOString(),
  }
  const result: ClassifiedBatch = { documents: [], alerts: [], deadLetters: [], deadLetterCodes: [], context }

  for (const record of records) {
    const decoded = decodeDetection(record.value, { maxBytes: options.maxMessageBytes })
    if (!decoded.ok) {
      result.deadLetterCodes.push(decoded.error.code)
      result.deadLetters.push(deadLetter(record, decoded.error.code, decoded.error.message, context))
      continue
    }
    const document = toDetectionDocument(
      decoded.message,
      { topic, partition, offset: Number(record.offset), timestamp: Number(record.timestamp) },
      false,
    )
    // The document carries the case-folded keys the rules compare.
    const matches = match(document)
    result.documents.push(document)
    if (matches !== null) {
      // Stored as "an alert was raised for it", whichever rules raised it.
      document.suspicious = true
      result.alerts.push({
        message: {
          key: document._id,
          value: JSON.stringify(buildAlert(document, matches.reason, matches.rules)),
          partition: alertPartition,
        },
        record,
      })
    }
  }
  return result
}

/** The original record, untouched, with headers that say what went wrong and where it came from. */
export function deadLetter(
  record: SourceRecord,
  code: DeadLetterCode,
  reason: string,
  context: DeadLetterContext,
): Message {
  return {
    key: record.key,
    value: record.value,
    partition: context.dlqPartition,
    headers: {
      ...record.headers,
      'x-error-code': code,
      'x-error-message': reason.slice(0, 1000),
      'x-source-topic': context.topic,
      'x-source-partition': String(context.partition),
      'x-source-offset': record.offset,
      'x-source-timestamp': record.timestamp,
      'x-failed-at': context.failedAt,
    },
  }
}

/**
 * A v2 record batch's fixed header; the broker checks the whole batch, header included, against
 * the topic's `max.message.bytes` (and answers MESSAGE_TOO_LARGE beyond it).
 */
export const RECORD_BATCH_OVERHEAD = 61
/** Upper bound of a record's own framing: length, attributes, timestamp and offset deltas, key and value lengths, header count (varints at their widest). */
const RECORD_OVERHEAD = 36
/** Upper bound of one header's two length varints. */
const HEADER_OVERHEAD = 10

function byteLength(value: string | Buffer | null | undefined): number {
  return value == null ? 0 : Buffer.byteLength(value)
}

/** The most bytes `message` can take inside an uncompressed v2 record batch. */
export function recordSize(message: Message): number {
  let size = RECORD_OVERHEAD + byteLength(message.key) + byteLength(message.value)
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) {
      size += HEADER_OVERHEAD + Buffer.byteLength(name) + byteLength(item as string | Buffer | undefined)
    }
  }
  return size
}

/**
 * Splits messages into sends whose record batch fits in `maxBatchBytes`. Each send of ours names a
 * single partition, so it travels as one record batch. A message too large to fit even alone is
 * returned in `oversized` instead of any send.
 */
export function chunkBySize(
  messages: readonly Message[],
  maxBatchBytes: number,
): { chunks: Message[][]; oversized: Message[] } {
  const chunks: Message[][] = []
  const oversized: Message[] = []
  let current: Message[] = []
  let size = RECORD_BATCH_OVERHEAD
  for (const message of messages) {
    const bytes = recordSize(message)
    if (RECORD_BATCH_OVERHEAD + bytes > maxBatchBytes) {
      oversized.push(message)
      continue
    }
    if (current.length > 0 && size + bytes > maxBatchBytes) {
      chunks.push(current)
      current = []
      size = RECORD_BATCH_OVERHEAD
    }
    current.push(message)
    size += bytes
  }
  if (current.length > 0) chunks.push(current)
  return { chunks, oversized }
}

export interface DeliveryLimits {
  /** Largest record batch the alerts topic accepts. */
  alertsBatchBytes: number
  /** Largest record batch the dead-letter topic accepts. */
  dlqBatchBytes: number
}

export interface DeliveryPlan {
  alertChunks: Message[][]
  deadLetterChunks: Message[][]
  alertCount: number
  deadLetterCodes: DeadLetterCode[]
  /** Dead letters too large for the dead-letter topic itself: sent without their value, and logged. */
  truncated: number
}

/**
 * What one batch's transaction sends, in sends that fit the topics' limits. An alert that cannot
 * fit even alone is replaced by a dead letter of its detection record (`ALERT_TOO_LARGE`); the
 * detection itself stays stored.
 */
export function planDelivery(batch: ClassifiedBatch, limits: DeliveryLimits): DeliveryPlan {
  const byKey = new Map(batch.alerts.map((alert) => [alert.message, alert.record]))
  const alerts = chunkBySize(
    batch.alerts.map((alert) => alert.message),
    limits.alertsBatchBytes,
  )
  const deadLetters = [...batch.deadLetters]
  const deadLetterCodes = [...batch.deadLetterCodes]
  for (const message of alerts.oversized) {
    const record = byKey.get(message)
    if (!record) continue
    const reason = `its alert takes ${recordSize(message) + RECORD_BATCH_OVERHEAD} bytes, over the alerts topic's limit of ${limits.alertsBatchBytes} bytes (max.message.bytes)`
    deadLetters.push(deadLetter(record, 'ALERT_TOO_LARGE', reason, batch.context))
    deadLetterCodes.push('ALERT_TOO_LARGE')
  }
  const dlq = chunkBySize(deadLetters, limits.dlqBatchBytes)
  // Only when the dead-letter topic accepts less than the detections topic: keep the coordinates
  // and the error (the record stays readable at its source offset while retention lasts).
  const withoutValue = dlq.oversized.map((message) => ({
    key: null,
    value: null,
    partition: message.partition,
    headers: {
      ...Object.fromEntries(Object.entries(message.headers ?? {}).filter(([name]) => name.startsWith('x-'))),
      'x-value-omitted': `${byteLength(message.value as string | Buffer | null)} bytes, over the dead-letter topic's limit`,
    },
  }))
  const rest = chunkBySize(withoutValue, limits.dlqBatchBytes)
  if (rest.oversized.length > 0) {
    // A limit this small cannot hold our own headers: stall loudly rather than lose a record.
    throw new Error(
      `the dead-letter topic's limit of ${limits.dlqBatchBytes} bytes cannot hold a dead letter's headers`,
    )
  }
  return {
    alertChunks: alerts.chunks,
    deadLetterChunks: [...dlq.chunks, ...rest.chunks],
    alertCount: batch.alerts.length - alerts.oversized.length,
    deadLetterCodes,
    truncated: withoutValue.length,
  }
}
