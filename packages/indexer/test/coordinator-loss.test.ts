// The group coordinator goes missing while partitions are being claimed: right after a broker
// restart, kafkajs's admin answers the committed-offset read with a non-retriable "Failed to find
// group coordinator". kafkajs stops a consumer for good on a non-retriable error from a batch, so
// the indexer must turn it into a redelivery and ride through, with nothing lost or doubled.

import kafkajs, { type Admin, type Kafka } from 'kafkajs'
import { expect, it } from 'vitest'
import {
  createPipeline,
  createTopics,
  detections,
  expectExactlyOnce,
  produce,
  startIndexer,
  testKafka,
  waitFor,
} from './helpers.js'

// kafkajs is CommonJS and Node's ESM loader does not detect this export by name.
const { KafkaJSNonRetriableError } = kafkajs

/** A real client whose admins fail `fetchOffsets` as kafkajs does while the coordinator is lost. */
function withLostCoordinator(kafka: Kafka, failures: { fromCall: number; count: number }) {
  let calls = 0
  let failed = 0
  const admin = (): Admin => {
    const real = kafka.admin()
    return Object.assign(Object.create(real) as Admin, {
      fetchOffsets: ((...args: Parameters<Admin['fetchOffsets']>) => {
        calls++
        if (calls >= failures.fromCall && failed < failures.count) {
          failed++
          return Promise.reject(new KafkaJSNonRetriableError('Failed to find group coordinator'))
        }
        return real.fetchOffsets(...args)
      }) as Admin['fetchOffsets'],
    })
  }
  return {
    kafka: Object.assign(Object.create(kafka) as Kafka, { admin }),
    failed: () => failed,
  }
}

it('rides through a lost group coordinator while claiming partitions', async () => {
  const pipeline = await createPipeline()
  await createTopics(pipeline)
  // Small fetches: many batches, each checked against the committed offset before it is delivered.
  const client = withLostCoordinator(testKafka('indexer', pipeline.brokers), { fromCall: 12, count: 3 })
  const fatal: Error[] = []
  const { indexer } = await startIndexer(pipeline, { maxBytesPerPartition: 2048 }, pipeline.repository, {
    kafka: client.kafka,
    onFatalError: (err) => fatal.push(err),
  })

  const fixtures = detections(600)
  const produced = await produce(
    pipeline.kafka,
    pipeline.topics.detections,
    fixtures.map((d) => JSON.stringify(d)),
  )
  await waitFor(
    async () => {
      if (fatal.length > 0) throw new Error(`the indexer's consumer stopped for good: ${fatal[0]?.message}`)
      return (await pipeline.store.storedCount()) >= produced.length && indexer.ready()
    },
    { timeoutMs: 60_000, what: 'every detection stored' },
  )
  expect(client.failed()).toBe(3)
  await expectExactlyOnce(pipeline, fixtures, produced)
  expect(fatal).toEqual([])
}, 90_000)
