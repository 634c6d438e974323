import { describe, expect, it } from 'vitest'
import { BACKENDS } from '../../../test/support/detections-stores.js'
import {
  committedCount,
  createPipeline,
  createTopics,
  exited,
  expectExactlyOnce,
  indexerEnv,
  produceBacklog,
  spawnIndexer,
  startIndexer,
  waitFor,
} from './helpers.js'

describe.each(BACKENDS)('zombie fencing (%s detections store)', (backend) => {
  it('a frozen indexer that wakes up after losing its partitions cannot publish a duplicate alert', async () => {
    const pipeline = await createPipeline({ backend })
    await createTopics(pipeline)
    const total = 2400
    const { fixtures, produced } = await produceBacklog(pipeline, total)
    const stored = () => pipeline.store.storedCount()

    const zombie = spawnIndexer(indexerEnv(pipeline, { INDEXER_MAX_BYTES_PER_PARTITION: '3072' }))
    await waitFor(async () => (await stored()) >= total * 0.2, { intervalMs: 10, what: '20% stored' })
    // Frozen mid-stream (a long GC pause, a stalled VM): its session expires, its partitions move.
    zombie.kill('SIGSTOP')
    const successor = await startIndexer(pipeline, { maxBytesPerPartition: 3072 })
    await waitFor(async () => (await stored()) >= total * 0.5, { intervalMs: 10, what: '50% stored' })
    // It wakes up and carries on with the batch it had in flight, then rejoins the group.
    zombie.kill('SIGCONT')
    await waitFor(async () => (await committedCount(pipeline)) === total, {
      timeoutMs: 45_000,
      what: 'every offset committed',
    })
    zombie.kill('SIGTERM')
    expect((await exited(zombie)).code).toBe(0)
    await successor.stop()

    await expectExactlyOnce(pipeline, fixtures, produced)
  }, 90_000)
})
