import type { DetectionDocument } from '@intellisite/detections-store'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { IndexerStoppingError } from '../src/batch/batch-errors.js'
import { createBatchSession, keepAlive } from '../src/batch/batch-session.js'
import { createStoreWriter } from '../src/batch/store-writer.js'
import { createIndexerMetrics } from '../src/metrics.js'

const logger = pino({ level: 'silent' })
/** What kafkajs's heartbeat rejects with once the group rebalances without this member. */
const rebalancing = () =>
  Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), {
    type: 'REBALANCE_IN_PROGRESS',
  })

/** kafkajs's batch callbacks, with heartbeats that fail from the `failFrom`th on. */
function consumerSide({ failFrom = Infinity, running = true } = {}) {
  const error = rebalancing()
  let beats = 0
  return {
    error,
    beats: () => beats,
    heartbeat: async () => {
      if (++beats >= failFrom) throw error
    },
    isRunning: () => running,
  }
}

/** A store that refuses the first `failures` bulk writes. */
function storeDown(failures: number) {
  let calls = 0
  return {
    calls: () => calls,
    ensureIndexes: async () => {},
    insertBatch: async (documents: readonly DetectionDocument[]) => {
      if (++calls <= failures) throw new Error('connection refused')
      return { inserted: documents.length, duplicates: 0 }
    },
  }
}

function storeWriterOn(repository: ReturnType<typeof storeDown>, retryMs = 5) {
  const metrics = createIndexerMetrics(new Registry())
  const writer = createStoreWriter({
    repository,
    retry: { initialMs: retryMs, maxMs: retryMs },
    metrics,
    logger,
    stopSignal: new AbortController().signal,
  })
  const retries = async () => (await metrics.read.storeRetries.get()).values[0]?.value ?? 0
  return { writer, retries }
}

describe('batch session', () => {
  it('keeps a failed heartbeat as the group error instead of throwing it', async () => {
    const consumer = consumerSide({ failFrom: 2 })
    const seen: Error[] = []
    const session = createBatchSession(consumer, (err) => seen.push(err))
    await session.heartbeat()
    expect(session.groupError()).toBeUndefined()
    await expect(session.heartbeat()).resolves.toBeUndefined()
    expect(session.groupError()).toBe(consumer.error)
    expect(seen).toEqual([consumer.error])
    expect(session.isRunning()).toBe(true)
  })

  it('beats while kept alive, and stops when told', async () => {
    const consumer = consumerSide()
    const stopKeepAlive = keepAlive(createBatchSession(consumer), 5)
    await new Promise((resolve) => setTimeout(resolve, 40))
    stopKeepAlive()
    const beats = consumer.beats()
    expect(beats).toBeGreaterThan(0)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(consumer.beats()).toBe(beats)
  })
})

describe('store writer on a batch session', () => {
  const documents = [{ _id: 'a' } as DetectionDocument]

  it('retries a store outage while the group holds, and writes once the store is back', async () => {
    const store = storeDown(3)
    const { writer, retries } = storeWriterOn(store)
    const session = createBatchSession(consumerSide())
    await expect(writer.write(documents, 0, session)).resolves.toEqual({ inserted: 1, duplicates: 0 })
    expect(store.calls()).toBe(4)
    expect(await retries()).toBe(3)
  })

  it('ends the write with the group error its own heartbeat saw, instead of retrying on', async () => {
    const store = storeDown(Infinity)
    const { writer, retries } = storeWriterOn(store)
    const consumer = consumerSide({ failFrom: 2 })
    const session = createBatchSession(consumer)
    await expect(writer.write(documents, 0, session)).rejects.toBe(consumer.error)
    // First retry: heartbeat fine; second: the heartbeat says the group rebalanced.
    expect(store.calls()).toBe(2)
    expect(await retries()).toBe(2)
  })

  it('ends the write with a group error the keep-alive saw while it waited', async () => {
    const store = storeDown(Infinity)
    // Waits of 200 ms at least, over which the keep-alive beats every 10 ms.
    const { writer } = storeWriterOn(store, 400)
    // The writer's own beat after the first failure is fine; the keep-alive's next one is not.
    const consumer = consumerSide({ failFrom: 2 })
    const session = createBatchSession(consumer)
    const written = writer.write(documents, 0, session)
    const stopKeepAlive = keepAlive(session, 10)
    try {
      await expect(written).rejects.toBe(consumer.error)
    } finally {
      stopKeepAlive()
    }
    // Not written again for a partition the group may have handed to another member.
    expect(store.calls()).toBe(1)
  })

  it('gives up with IndexerStoppingError once the consumer stops', async () => {
    const { writer } = storeWriterOn(storeDown(Infinity))
    const session = createBatchSession(consumerSide({ running: false }))
    await expect(writer.write(documents, 0, session)).rejects.toBeInstanceOf(IndexerStoppingError)
  })
})
