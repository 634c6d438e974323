import type { AddressInfo } from 'node:net'
import { detectionId } from '@intellisite/detections-store'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createIndexerHealthServer as createHealthServer } from '../src/health.js'
import {
  committedCount,
  createPipeline,
  PARTITIONS,
  type Pipeline,
  produce,
  readTopic,
  startIndexer,
  waitFor,
} from './helpers.js'

/** Creates the pipeline's topics up front, the alerts topic with its own `max.message.bytes`. */
async function createTopics(pipeline: Pipeline, alertsMaxMessageBytes?: number): Promise<void> {
  const admin = pipeline.kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({
      topics: Object.entries(pipeline.topics).map(([name, topic]) => ({
        topic,
        numPartitions: PARTITIONS,
        ...(name === 'alerts' &&
          alertsMaxMessageBytes !== undefined && {
            configEntries: [{ name: 'max.message.bytes', value: String(alertsMaxMessageBytes) }],
          }),
      })),
      waitForLeaders: true,
    })
  } finally {
    await admin.disconnect()
  }
}

const suv = (i: number) =>
  JSON.stringify({ Year: 2000 + (i % 25), Make: 'Toyota', Model: `RAV${i % 9}`, Category: 'SUV' })

async function counterValue(counter: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0)
}

async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe('bursts of suspicious detections', () => {
  it.each([
    { name: "the broker's default limit", alertsMaxMessageBytes: undefined },
    { name: 'an alerts topic limited to 64 KiB', alertsMaxMessageBytes: 64 * 1024 },
  ])(
    'drains a backlog of 20,000 SUVs read in large fetches, under $name',
    async ({ alertsMaxMessageBytes }) => {
      const pipeline = await createPipeline()
      await createTopics(pipeline, alertsMaxMessageBytes)
      const total = 20_000
      const produced = await produce(
        pipeline.kafka,
        pipeline.topics.detections,
        Array.from({ length: total }, (_, i) => suv(i)),
        { perSend: 1_000 },
      )
      // Each partition's whole backlog (about 0.6 MB of detections, 1.4 MB of alerts) fits one fetch.
      const { metrics } = await startIndexer(pipeline, { maxBytesPerPartition: 16 * 1024 * 1024 })

      await waitFor(async () => (await committedCount(pipeline)) === total, {
        timeoutMs: 90_000,
        what: 'every offset committed',
      })
      const alerts = await readTopic(pipeline.kafka, pipeline.topics.alerts, total, { timeoutMs: 60_000 })
      expect(alerts).toHaveLength(total)
      const expectedIds = new Set(
        produced.map((p) => detectionId({ topic: pipeline.topics.detections, ...p })),
      )
      expect(new Set(alerts.map((a) => a.key))).toEqual(expectedIds)
      expect(await pipeline.repository.count()).toBe(total)
      expect(await counterValue(metrics.read.transactionsAborted)).toBe(0)
      expect(await counterValue(metrics.read.alerts)).toBe(total)
    },
    180_000,
  )

  it('dead-letters a detection whose alert alone is over the limit, and alerts its neighbours', async () => {
    const pipeline = await createPipeline()
    // Room for an ordinary alert (about 280 bytes as a record batch), not for one with long names.
    await createTopics(pipeline, 400)
    const huge = JSON.stringify({
      Year: 2011,
      Make: 'M'.repeat(100),
      Model: 'X'.repeat(100),
      Category: 'SUV',
    })
    const values = [suv(0), suv(1), huge, suv(3), suv(4), 'not json', suv(6)]
    const produced = await produce(pipeline.kafka, pipeline.topics.detections, values, {
      perSend: values.length,
    })
    const { metrics } = await startIndexer(pipeline)

    const dead = await readTopic(pipeline.kafka, pipeline.topics.dlq, 2)
    const tooLarge = dead.find((d) => d.headers['x-error-code'] === 'ALERT_TOO_LARGE')
    const hugeRecord = produced[2]!
    expect(tooLarge?.value?.toString()).toBe(huge)
    expect(tooLarge?.headers).toMatchObject({
      'x-source-topic': pipeline.topics.detections,
      'x-source-partition': String(hugeRecord.partition),
      'x-source-offset': String(hugeRecord.offset),
    })
    expect(tooLarge?.headers['x-error-message']).toContain('max.message.bytes')
    expect(dead.map((d) => d.headers['x-error-code']).sort()).toEqual(['ALERT_TOO_LARGE', 'INVALID_JSON'])

    const alerts = await readTopic(pipeline.kafka, pipeline.topics.alerts, 5)
    const id = (i: number) => detectionId({ topic: pipeline.topics.detections, ...produced[i]! })
    expect(new Set(alerts.map((a) => a.key))).toEqual(new Set([0, 1, 3, 4, 6].map(id)))
    // The detection itself is stored and served, as every valid detection is.
    expect(await pipeline.repository.count()).toBe(6)
    expect((await pipeline.repository.list({ limit: 10, filters: { make: 'm'.repeat(100) } })).items).toEqual(
      [expect.objectContaining({ id: id(2), model: 'X'.repeat(100) })],
    )
    expect(await counterValue(metrics.read.transactionsAborted)).toBe(0)
  })

  it('reports a partition that cannot deliver as not ready, and recovers once the fault is gone', async () => {
    const pipeline = await createPipeline()
    await createTopics(pipeline)
    const stallAfterMs = 4_000
    const { indexer, registry } = await startIndexer(pipeline, {
      stall: { failures: 3, afterMs: stallAfterMs },
      publishRetry: { initialMs: 200, maxMs: 2_000 },
    })
    const server = createHealthServer({
      registry,
      checks: {
        kafka: indexer.ready,
        detections: { backend: pipeline.store.backend, ping: () => pipeline.repository.ping() },
        stalled: indexer.stalled,
      },
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = (server.address() as AddressInfo).port

    const first = await produce(pipeline.kafka, pipeline.topics.detections, [suv(0), suv(1), suv(2)])
    await waitFor(async () => (await committedCount(pipeline)) === 3, { what: 'first detections committed' })
    expect((await readyz(port)).status).toBe(200)

    // The broker does not create topics: every transaction of the next batch fails.
    const admin = pipeline.kafka.admin()
    await admin.connect()
    onTestFinished(() => admin.disconnect())
    await admin.deleteTopics({ topics: [pipeline.topics.alerts] })
    await waitFor(async () => !(await admin.listTopics()).includes(pipeline.topics.alerts), {
      what: 'alerts topic deleted',
    })
    const faulted = await produce(pipeline.kafka, pipeline.topics.detections, [suv(3)], { perSend: 1 })
    const stuck = faulted[0]!.partition
    const since = Date.now()
    await waitFor(async () => (await readyz(port)).status === 503, {
      timeoutMs: stallAfterMs + 10_000,
      what: 'readiness reporting the stall',
    })
    const { body } = await readyz(port)
    expect(body).toMatchObject({ status: 'unavailable', checks: { partitions: 'down' } })
    expect(body.stalled).toEqual([
      expect.objectContaining({
        topic: pipeline.topics.detections,
        partition: stuck,
        hint: expect.any(String),
      }),
    ])
    expect(Date.now() - since).toBeLessThan(stallAfterMs + 10_000)
    expect(await registry.getSingleMetricAsString('indexer_partition_stalled')).toMatch(
      new RegExp(
        `indexer_partition_stalled\\{topic="${pipeline.topics.detections}",partition="${stuck}"\\} 1`,
      ),
    )
    expect(await committedCount(pipeline)).toBe(3)

    await admin.createTopics({
      topics: [{ topic: pipeline.topics.alerts, numPartitions: PARTITIONS }],
      waitForLeaders: true,
    })
    await waitFor(async () => (await committedCount(pipeline)) === 4, {
      timeoutMs: 60_000,
      what: 'the stalled batch committed once the topic is back',
    })
    await waitFor(async () => (await readyz(port)).status === 200, { what: 'ready again' })
    // The re-created topic holds exactly the alert of the batch that waited for it.
    const alerts = await readTopic(pipeline.kafka, pipeline.topics.alerts, 1)
    expect(alerts.map((a) => a.key)).toEqual([
      detectionId({ topic: pipeline.topics.detections, ...faulted[0]! }),
    ])
    expect(first).toHaveLength(3)
  }, 120_000)
})
