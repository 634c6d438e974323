import type { Message } from 'kafkajs'
import { type ClassifiedBatch, type DeadLetterCode, deadLetter } from './classify-records.js'

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
  // Alerts carry no headers: skip the entries array every one of them would allocate.
  if (message.headers == null) return size
  for (const [name, value] of Object.entries(message.headers)) {
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
  const alerts = chunkBySize(
    batch.alerts.map((alert) => alert.message),
    limits.alertsBatchBytes,
  )
  const deadLetters = [...batch.deadLetters]
  const deadLetterCodes = [...batch.deadLetterCodes]
  // Only for the rare oversized alert: a map entry per alert costs more than sizing it.
  const byKey = alerts.oversized.length === 0 ? null : new Map(batch.alerts.map((a) => [a.message, a.record]))
  for (const message of alerts.oversized) {
    const record = byKey?.get(message)
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
