import type { AddressInfo } from 'node:net'
import { openDetectionsStore } from '@intellisite/detections-store'
import { pino } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BACKENDS } from '../../../test/support/detections-stores.js'
import { createTcpProxy } from '../../../test/support/tcp-proxy.js'
import { createIndexerHealthServer as createHealthServer } from '../src/health.js'
import {
  committedCount,
  createPipeline,
  detections,
  isSuspicious,
  type Pipeline,
  parseAlerts,
  produce,
  readTopic,
  startIndexer,
  waitFor,
} from './helpers.js'

/** The indexer on a store reached through a proxy the test can cut, with its readiness endpoint. */
async function indexerBehindProxy(pipeline: Pipeline) {
  const target = new URL(pipeline.storeUrl())
  const proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port) })
  onTestFinished(() => proxy.close())
  const store = openDetectionsStore(pipeline.storeUrl({ host: '127.0.0.1', port: proxy.port }), {
    connectTimeoutMs: 1_000,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }).child({ component: 'detections-store' }),
  })
  onTestFinished(() => store.close())
  const { indexer, registry } = await startIndexer(pipeline, {}, store.repository)
  const server = createHealthServer({
    registry,
    checks: {
      kafka: indexer.ready,
      detections: { backend: store.backend, ping: () => store.repository.ping() },
      stalled: indexer.stalled,
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const readyz = async () =>
    (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`)).status
  const retries = async () =>
    Number((await registry.getSingleMetricAsString('indexer_store_retries_total')).trim().split(' ').at(-1))
  return { proxy, readyz, retries }
}

async function expectAllOnce(pipeline: Pipeline, fixtures: ReturnType<typeof detections>) {
  expect(await pipeline.store.storedCount()).toBe(fixtures.length)
  const suspicious = fixtures.filter((d) => isSuspicious(d.Category)).length
  const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, suspicious))
  expect(alerts).toHaveLength(suspicious)
  expect(new Set(alerts.map((a) => a.id)).size).toBe(suspicious)
  expect((await pipeline.repository.stats('make')).total).toBe(fixtures.length)
  expect(await pipeline.repository.count()).toBe(fixtures.length)
}

describe.each(BACKENDS)('store outage (%s detections store)', (backend) => {
  it('pauses while the store is unreachable and loses nothing once it is back', async () => {
    const pipeline = await createPipeline({ backend })
    const { proxy, readyz, retries } = await indexerBehindProxy(pipeline)
    const stored = () => pipeline.store.storedCount()

    const fixtures = detections(600)
    const values = fixtures.map((d) => JSON.stringify(d))
    await produce(pipeline.kafka, pipeline.topics.detections, values.slice(0, 300))
    await waitFor(async () => (await committedCount(pipeline)) === 300, { what: 'first half committed' })
    expect(await stored()).toBe(300)
    expect(await readyz()).toBe(200)

    proxy.pause()
    await produce(pipeline.kafka, pipeline.topics.detections, values.slice(300))
    await waitFor(async () => (await retries()) > 0, { what: 'store retries during the outage' })
    expect(await readyz()).toBe(503)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    // Nothing moved past the outage: no document written, no offset committed beyond them.
    expect(await stored()).toBe(300)
    expect(await committedCount(pipeline)).toBe(300)

    proxy.resume()
    await waitFor(async () => (await committedCount(pipeline)) === 600, { what: 'all offsets committed' })
    expect(await readyz()).toBe(200)
    await expectAllOnce(pipeline, fixtures)
  })

  it('survives a server restart mid-ingest (connections cut mid-write): nothing lost or doubled', async () => {
    const pipeline = await createPipeline({ backend })
    const { proxy, readyz, retries } = await indexerBehindProxy(pipeline)
    const stored = () => pipeline.store.storedCount()
    const fixtures = detections(3_000)
    const producing = produce(
      pipeline.kafka,
      pipeline.topics.detections,
      fixtures.map((d) => JSON.stringify(d)),
      { perSend: 50 },
    )
    await waitFor(async () => (await stored()) > 0, { what: 'ingest under way' })
    // A restart: every open connection dies at once, new ones are refused until the server is back.
    proxy.pause('refuse')
    await waitFor(async () => (await retries()) > 0, { what: 'store retries during the restart' })
    expect(await readyz()).toBe(503)
    const duringOutage = await committedCount(pipeline)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(await committedCount(pipeline)).toBe(duringOutage)
    proxy.resume()
    await producing
    await waitFor(async () => (await committedCount(pipeline)) === fixtures.length, {
      timeoutMs: 60_000,
      what: 'all offsets committed',
    })
    expect(await readyz()).toBe(200)
    await expectAllOnce(pipeline, fixtures)
  })
})
