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
  waitFor,
} from './helpers.js'

describe.each(BACKENDS)('crash recovery (%s detections store)', (backend) => {
  it('after SIGKILLs mid-stream: no detection missing or doubled, one alert per suspicious one', async () => {
    const pipeline = await createPipeline({ backend })
    await createTopics(pipeline)
    const total = 3000
    const { fixtures, produced } = await produceBacklog(pipeline, total)
    // Small fetches make many small batches, so each kill lands in the middle of the stream.
    const env = indexerEnv(pipeline, { INDEXER_MAX_BYTES_PER_PARTITION: '3072' })
    const stored = () => pipeline.store.storedCount()

    const killedAt: { how: string; stored: number; committed: number }[] = []
    const record = async (how: string) =>
      killedAt.push({ how, stored: await stored(), committed: await committedCount(pipeline) })

    // 1-2. Deterministic kills at the two moments that matter: batch stored but its transaction not
    // started (must be redelivered, stored once), and transaction just committed (must not be
    // redelivered: a design that commits offsets separately would duplicate alerts here).
    for (const failpoint of ['after-store:4', 'after-commit:4']) {
      const child = spawnIndexer({ ...env, INDEXER_FAILPOINT: failpoint })
      expect((await exited(child)).signal).toBe('SIGKILL')
      await record(failpoint)
    }
    // 3. And one at an arbitrary moment.
    const child = spawnIndexer(env)
    await waitFor(async () => (await stored()) >= total * 0.65, {
      intervalMs: 10,
      timeoutMs: 30_000,
      what: '65% stored',
    })
    child.kill('SIGKILL')
    expect((await exited(child)).signal).toBe('SIGKILL')
    await record('arbitrary')
    // Every kill interrupted a stream that still had work left.
    for (const point of killedAt) expect(point.stored).toBeLessThan(total)

    const last = spawnIndexer(env)
    await waitFor(async () => (await committedCount(pipeline)) === total, {
      timeoutMs: 40_000,
      what: 'every offset committed',
    })
    // Graceful stop: SIGTERM exits 0.
    last.kill('SIGTERM')
    expect((await exited(last)).code).toBe(0)

    // No detection missing or doubled, one alert per suspicious one, stats exact.
    await expectExactlyOnce(pipeline, fixtures, produced)
    console.info('crash-recovery kill points', killedAt)
  }, 120_000)
})
