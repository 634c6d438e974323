import type { AddressInfo } from 'node:net'
import { createDetectionsRepository } from '@intellisite/detections-store'
import { MongoClient } from 'mongodb'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createTcpProxy } from '../../../test/support/tcp-proxy.js'
import { createHealthServer } from '../src/http-server.js'
import {
  committedCount,
  createPipeline,
  detections,
  isSuspicious,
  parseAlerts,
  produce,
  readTopic,
  requireEnv,
  startIndexer,
  waitFor,
} from './helpers.js'

describe('store outage', () => {
  it('pauses while MongoDB is unreachable and loses nothing once it is back', async () => {
    const pipeline = await createPipeline()
    const target = new URL(requireEnv('MONGO_URL'))
    const proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 27017) })
    onTestFinished(() => proxy.close())
    const client = new MongoClient(pipeline.mongoUrl({ host: '127.0.0.1', port: proxy.port }), {
      serverSelectionTimeoutMS: 1_000,
    })
    onTestFinished(() => client.close())
    const repository = createDetectionsRepository(client.db())
    const { indexer, registry } = await startIndexer(pipeline, {}, repository)
    const server = createHealthServer({
      registry,
      checks: { kafka: indexer.ready, mongo: () => repository.ping(), stalled: indexer.stalled },
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const readyz = async () =>
      (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`)).status
    const stored = () => pipeline.repository.collection.countDocuments()

    const fixtures = detections(600)
    const values = fixtures.map((d) => JSON.stringify(d))
    await produce(pipeline.kafka, pipeline.topics.detections, values.slice(0, 300))
    await waitFor(async () => (await stored()) === 300, { what: 'first half stored' })
    expect(await readyz()).toBe(200)

    proxy.pause()
    await produce(pipeline.kafka, pipeline.topics.detections, values.slice(300))
    await waitFor(
      async () =>
        (await registry.getSingleMetricAsString('indexer_store_retries_total')).endsWith(' 0') === false,
      {
        what: 'store retries during the outage',
      },
    )
    expect(await readyz()).toBe(503)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    // Nothing moved past the outage: no document written, no offset committed beyond them.
    expect(await stored()).toBe(300)
    expect(await committedCount(pipeline)).toBe(300)

    proxy.resume()
    await waitFor(async () => (await committedCount(pipeline)) === 600, { what: 'all offsets committed' })
    expect(await stored()).toBe(600)
    expect(await readyz()).toBe(200)

    const suspicious = fixtures.filter((d) => isSuspicious(d.Category)).length
    const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, suspicious))
    expect(alerts).toHaveLength(suspicious)
    expect(new Set(alerts.map((a) => a.id)).size).toBe(suspicious)
    expect((await pipeline.repository.stats('make')).total).toBe(600)
  })
})
