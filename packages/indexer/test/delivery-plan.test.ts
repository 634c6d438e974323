import type { Message } from 'kafkajs'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { ClassifiedBatch } from '../src/batch/classify-records.js'
import { chunkBySize, planDelivery, RECORD_BATCH_OVERHEAD, recordSize } from '../src/batch/delivery-plan.js'
import { createPartitionHealth } from '../src/partition-health.js'

const message = (bytes: number, key = 'k'): Message => ({ key, value: 'v'.repeat(bytes), partition: 0 })

function batchOf(alertBytes: readonly number[]): ClassifiedBatch {
  return {
    documents: [],
    alerts: alertBytes.map((bytes, i) => ({
      message: message(bytes, `alert-${i}`),
      record: {
        offset: String(i),
        timestamp: '1700000000000',
        key: null,
        value: Buffer.from(`detection ${i}`),
      },
    })),
    deadLetters: [],
    deadLetterCodes: [],
    context: { topic: 'detections', partition: 2, dlqPartition: 0, failedAt: '2026-01-01T00:00:00.000Z' },
  }
}

describe('chunkBySize', () => {
  it('keeps every record batch within the limit, header included, and in order', () => {
    const messages = Array.from({ length: 1000 }, (_, i) => message(100 + (i % 50), `k${i}`))
    const limit = 4096
    const { chunks, oversized } = chunkBySize(messages, limit)
    expect(oversized).toEqual([])
    expect(chunks.flat()).toEqual(messages)
    for (const chunk of chunks) {
      expect(RECORD_BATCH_OVERHEAD + chunk.reduce((sum, m) => sum + recordSize(m), 0)).toBeLessThanOrEqual(
        limit,
      )
    }
    // Full chunks: each but the last would overflow with the next message.
    expect(chunks.length).toBeLessThan(Math.ceil((1000 * 200) / (limit - RECORD_BATCH_OVERHEAD)) + 1)
  })

  it('sets apart a message that cannot fit even alone', () => {
    const big = message(5000)
    const { chunks, oversized } = chunkBySize([message(10), big, message(10)], 1024)
    expect(oversized).toEqual([big])
    expect(chunks.flat()).toHaveLength(2)
  })

  it('counts headers, including repeated ones', () => {
    const plain = recordSize({ key: 'k', value: 'v' })
    const withHeaders = recordSize({ key: 'k', value: 'v', headers: { a: 'xyz', b: ['1', '22'] } })
    expect(withHeaders - plain).toBe(10 + 1 + 3 + (10 + 1 + 1) + (10 + 1 + 2))
  })
})

describe('planDelivery', () => {
  it('sends the alerts of a burst in sends that fit', () => {
    const plan = planDelivery(batchOf(Array(10_000).fill(200)), {
      alertsBatchBytes: 65_536,
      dlqBatchBytes: 65_536,
    })
    expect(plan.alertCount).toBe(10_000)
    expect(plan.alertChunks.flat()).toHaveLength(10_000)
    expect(plan.alertChunks.length).toBeGreaterThan(30)
    expect(plan.deadLetterChunks).toEqual([])
  })

  it('dead-letters the detection of an alert too large to send, with its own code', () => {
    const plan = planDelivery(batchOf([100, 2_000, 100]), {
      alertsBatchBytes: 1_000,
      dlqBatchBytes: 1_000_000,
    })
    expect(plan.alertCount).toBe(2)
    expect(plan.alertChunks.flat().map((m) => m.key)).toEqual(['alert-0', 'alert-2'])
    expect(plan.deadLetterCodes).toEqual(['ALERT_TOO_LARGE'])
    const [letter] = plan.deadLetterChunks.flat()
    expect(String(letter?.value)).toBe('detection 1')
    expect(letter?.headers).toMatchObject({
      'x-error-code': 'ALERT_TOO_LARGE',
      'x-source-topic': 'detections',
      'x-source-partition': '2',
      'x-source-offset': '1',
    })
  })

  it('sends a dead letter too large for the dead-letter topic without its value, never drops it', () => {
    const batch = batchOf([])
    batch.deadLetters.push({
      key: null,
      value: 'x'.repeat(5_000),
      partition: 0,
      headers: { 'x-error-code': 'TOO_LARGE' },
    })
    batch.deadLetterCodes.push('TOO_LARGE')
    const plan = planDelivery(batch, { alertsBatchBytes: 1_000, dlqBatchBytes: 1_000 })
    expect(plan.truncated).toBe(1)
    const [letter] = plan.deadLetterChunks.flat()
    expect(letter?.value).toBeNull()
    expect(letter?.headers).toMatchObject({
      'x-error-code': 'TOO_LARGE',
      'x-value-omitted': "5000 bytes, over the dead-letter topic's limit",
    })
  })
})

describe('partition health', () => {
  const logger = pino({ level: 'silent' })

  it('calls a partition stalled after N failures in a row, and healthy once it commits', () => {
    let now = 0
    const health = createPartitionHealth({
      topic: 't',
      failureThreshold: 3,
      stallAfterMs: 60_000,
      logger,
      now: () => now,
    })
    health.waiting(1)
    const err = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' })
    health.failed(1, err)
    health.failed(1, err)
    expect(health.stalled()).toEqual([])
    now = 5_000
    health.failed(1, err)
    expect(health.stalled()).toEqual([
      expect.objectContaining({
        partition: 1,
        reason: 'failing',
        failures: 3,
        error: 'too large',
        code: 'MESSAGE_TOO_LARGE',
      }),
    ])
    expect(health.stalled()[0]?.hint).toContain('max.message.bytes')
    health.committed(1)
    expect(health.stalled()).toEqual([])
  })

  it('says what to do about a lost broker and an unavailable coordinator', () => {
    const health = createPartitionHealth({ topic: 't', failureThreshold: 1, stallAfterMs: 60_000, logger })
    const refused = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), {
      name: 'KafkaJSConnectionError',
    })
    health.waiting(0)
    health.failed(
      0,
      Object.assign(new Error('gave up'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: refused }),
    )
    health.waiting(1)
    health.failed(
      1,
      Object.assign(new Error('The group coordinator is not available'), {
        type: 'GROUP_COORDINATOR_NOT_AVAILABLE',
      }),
    )
    health.waiting(2)
    health.failed(2, Object.assign(new Error('Closed connection'), { name: 'KafkaJSConnectionClosedError' }))
    const [lost, coordinator, closed] = health.stalled()
    expect(lost?.code).toBeUndefined()
    expect(lost?.hint).toContain('a broker does not answer')
    expect(closed?.hint).toContain('a broker does not answer')
    expect(coordinator?.code).toBe('GROUP_COORDINATOR_NOT_AVAILABLE')
    expect(coordinator?.hint).toContain('bring the lost brokers back')
  })

  it('calls a partition stalled when records wait with no commit for too long', () => {
    let now = 1_000
    const health = createPartitionHealth({
      topic: 't',
      failureThreshold: 5,
      stallAfterMs: 10_000,
      logger,
      now: () => now,
    })
    health.waiting(0)
    now = 10_999
    expect(health.stalled()).toEqual([])
    now = 11_000
    expect(health.stalled()).toEqual([
      expect.objectContaining({
        partition: 0,
        reason: 'no-progress',
        failures: 0,
        waitingSince: new Date(1_000).toISOString(),
      }),
    ])
    health.retain(new Set([1]))
    expect(health.stalled()).toEqual([])
  })
})
