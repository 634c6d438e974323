import {
  buildAlert,
  type DetectionDocument,
  type SuspiciousRule,
  toDetectionDocument,
} from '@intellisite/detections-store'
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
  rule: SuspiciousRule
  maxMessageBytes: number
  alertsPartitions: number
  dlqPartitions: number
  /** Time stamped on dead letters, injectable for tests. */
  now?: Date
}

export interface ClassifiedBatch {
  documents: DetectionDocument[]
  /** Ready to send to the alerts topic: keyed by detection id, on a partition derived from the source's. */
  alerts: Message[]
  deadLetters: Message[]
  deadLetterCodes: DecodeErrorCode[]
}

/**
 * Turns one partition's records into the store writes, the alerts and the dead letters, in record
 * order. Pure: the delivery code decides when each of them is written.
 */
export function classifyRecords(records: readonly SourceRecord[], options: ClassifyOptions): ClassifiedBatch {
  const { topic, partition, rule } = options
  // Every record of a source partition lands on one alerts partition, so per-partition order
  // holds end to end (Kafka only orders within a partition).
  const alertPartition = partition % options.alertsPartitions
  const dlqPartition = partition % options.dlqPartitions
  const failedAt = (options.now ?? new Date()).toISOString()
  const result: ClassifiedBatch = { documents: [], alerts: [], deadLetters: [], deadLetterCodes: [] }

  for (const record of records) {
    const decoded = decodeDetection(record.value, { maxBytes: options.maxMessageBytes })
    if (!decoded.ok) {
      result.deadLetterCodes.push(decoded.error.code)
      result.deadLetters.push({
        key: record.key,
        value: record.value,
        partition: dlqPartition,
        headers: {
          ...record.headers,
          'x-error-code': decoded.error.code,
          'x-error-message': decoded.error.message.slice(0, 1000),
          'x-source-topic': topic,
          'x-source-partition': String(partition),
          'x-source-offset': record.offset,
          'x-source-timestamp': record.timestamp,
          'x-failed-at': failedAt,
        },
      })
      continue
    }
    const matched = rule(decoded.message.Category)
    const document = toDetectionDocument(
      decoded.message,
      { topic, partition, offset: Number(record.offset), timestamp: Number(record.timestamp) },
      matched !== null,
    )
    result.documents.push(document)
    if (matched !== null) {
      result.alerts.push({
        key: document._id,
        value: JSON.stringify(buildAlert(document, matched)),
        partition: alertPartition,
      })
    }
  }
  return result
}

/** Splits messages into sends of at most `maxBytes` of values, so one produce request stays under the broker's limit. */
export function chunkBySize(messages: readonly Message[], maxBytes: number): Message[][] {
  const chunks: Message[][] = []
  let current: Message[] = []
  let size = 0
  for (const message of messages) {
    const bytes = message.value == null ? 0 : Buffer.byteLength(message.value)
    if (current.length > 0 && size + bytes > maxBytes) {
      chunks.push(current)
      current = []
      size = 0
    }
    current.push(message)
    size += bytes
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}
