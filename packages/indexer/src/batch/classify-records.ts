import type { MatchableDetection, RuleMatches } from '@intellisite/alert-rules'
import { alertJson, type DetectionDocument, toDetectionDocument } from '@intellisite/detections-store'
import type { IHeaders, Message } from 'kafkajs'
import { type DecodeErrorCode, decodeDetection } from '../decode-detection.js'

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
      result.alerts.push({ message: alertMessage(document, matches, alertPartition), record })
    }
  }
  return result
}

/** The alert a matched detection raises, keyed by its id, for the alerts topic's `partition`. */
export function alertMessage(document: DetectionDocument, matches: RuleMatches, partition: number): Message {
  return {
    key: document._id,
    value: alertJson(document, matches.reason, matches.rules),
    partition,
  }
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
