// When rules take effect: not one detection is classified before the changelog is read to its end
// (readiness says so meanwhile), and every member of the indexers' group applies every change.
import type { AddressInfo } from 'node:net'
import { ruleRecord, ruleTombstone } from '@intellisite/alert-rules'
import kafkajs, { type ConsumerConfig, type ConsumerRunConfig, type Kafka } from 'kafkajs'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { expect, it, onTestFinished } from 'vitest'
import { createIndexerHealthServer as createHealthServer } from '../src/health.js'
import { createIndexer } from '../src/indexer.js'
import { createIndexerMetrics } from '../src/metrics.js'
import {
  committedCount,
  createPipeline,
  createTopics,
  type Pipeline,
  produce,
  publishRules,
  startIndexer,
  testKafka,
  testSettings,
  waitFor,
} from './helpers.js'
import { alertsById, indexed, metricValue, rule, rulesApplied, vehicle } from './support/rules.js'

const { KafkaJSNonRetriableError } = kafkajs

/**
 * A real client whose rules consumer holds its first batch of rules until the test lets it go,
 * and which notes the groups of the consumers created.
 */
function withHeldRules(kafka: Kafka, pipeline: Pipeline) {
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let held = false
  const groups: string[] = []
  const consumer = (config: ConsumerConfig) => {
    const real = kafka.consumer(config)
    groups.push(config.groupId)
    if (!config.groupId.startsWith(`${pipeline.groupId}.rules-`)) return real
    return Object.assign(Object.create(real) as typeof real, {
      run: (run: ConsumerRunConfig) =>
        real.run({
          ...run,
          eachBatch: async (payload) => {
            held = true
            await released
            return run.eachBatch!(payload)
          },
        }),
    })
  }
  return {
    kafka: Object.assign(Object.create(kafka) as Kafka, { consumer }),
    release,
    groups,
    held: () => held,
  }
}

it('reads the rules to their end before it consumes a detection, unready meanwhile', async () => {
  const pipeline = await createPipeline()
  // Several partitions: the end is reached on every one of them.
  await createTopics(pipeline, { rulesPartitions: 3 })
  const subarus = rule({ name: 'subarus' })
  const toyotas = rule({ name: 'toyotas', match: { make: ['Toyota'] } })
  const gone = rule({ name: 'fords', match: { make: ['Ford'] } })
  await publishRules(pipeline, [ruleRecord(subarus), ruleRecord(toyotas), ruleRecord(gone)])
  await publishRules(pipeline, [ruleTombstone(gone.id)])
  const fixtures = [
    vehicle('Subaru', 'Legacy', 'Sedan'),
    vehicle('Toyota', 'Camry', 'Sedan'),
    vehicle('Ford', 'Focus', 'Sedan'),
    vehicle('Honda', 'Civic', 'Sedan'),
  ]
  const produced = await produce(
    pipeline.kafka,
    pipeline.topics.detections,
    fixtures.map((d) => JSON.stringify(d)),
  )

  const client = withHeldRules(testKafka('indexer', pipeline.brokers), pipeline)
  const registry = new Registry()
  const indexer = createIndexer({
    kafka: client.kafka,
    repository: pipeline.repository,
    config: testSettings(pipeline),
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics: createIndexerMetrics(registry),
  })
  onTestFinished(async () => {
    client.release()
    await indexer.stop()
  })
  const server = createHealthServer({
    registry,
    checks: {
      kafka: indexer.ready,
      detections: { backend: pipeline.store.backend, ping: () => pipeline.repository.ping() },
      stalled: indexer.stalled,
      rules: indexer.rulesLoaded,
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const readyz = async () => {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`)
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  const started = indexer.start()
  await waitFor(client.held, { timeoutMs: 20_000, what: 'the first batch of rules fetched' })
  // Time enough for a detections consumer started too early to be created and join its group.
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  const loading = await readyz()
  expect(loading.status).toBe(503)
  expect(loading.body).toMatchObject({
    status: 'unavailable',
    checks: { rules: 'down' },
    detail: 'loading alert rules',
  })
  expect(client.groups).not.toContain(pipeline.groupId)
  expect(await committedCount(pipeline)).toBe(0)
  expect(await pipeline.store.storedCount()).toBe(0)

  client.release()
  await started
  await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 20_000, what: 'ready' })
  expect((await readyz()).body).toMatchObject({ checks: { rules: 'up' } })
  expect((await readyz()).body).not.toHaveProperty('detail')
  expect(await metricValue(registry, 'indexer_rules')).toBe(3)

  // The very first detections met every rule published before the start.
  await waitFor(async () => (await committedCount(pipeline)) === produced.length, {
    what: 'the backlog committed',
  })
  const alerts = [...(await alertsById(pipeline, 2)).values()]
  expect(alerts.map((a) => [a.make, a.rules?.map((r) => r.id)]).sort()).toEqual([
    ['Subaru', [subarus.id]],
    ['Toyota', [toyotas.id]],
  ])
})

it('every member of the group applies a change: each partition follows it', async () => {
  const pipeline = await createPipeline()
  const a = await startIndexer(pipeline)
  const b = await startIndexer(pipeline)
  // Both own partitions of the detections topic (the stalled gauge lists what each owns).
  const owned = async (registry: Registry) =>
    (await registry.getSingleMetric('indexer_partition_stalled')!.get()).values.length
  await waitFor(async () => (await owned(a.registry)) > 0 && (await owned(b.registry)) > 0, {
    timeoutMs: 30_000,
    what: 'partitions shared by both indexers',
  })

  const v1 = rule()
  await publishRules(pipeline, [ruleRecord(v1)])
  await rulesApplied(a.registry, 1)
  await rulesApplied(b.registry, 1)
  const before = await indexed(
    pipeline,
    Array.from({ length: 12 }, () => vehicle('Subaru', 'Legacy', 'Sedan', 2010)),
  )

  const v2 = { ...v1, version: 2, match: { make: ['Subaru'], year: { min: 2020 } } }
  await publishRules(pipeline, [ruleRecord(v2)])
  await rulesApplied(a.registry, 2)
  await rulesApplied(b.registry, 2)
  const after = await indexed(pipeline, [
    ...Array.from({ length: 12 }, () => vehicle('Subaru', 'Legacy', 'Sedan', 2010)),
    ...Array.from({ length: 12 }, () => vehicle('Subaru', 'Legacy', 'Sedan', 2021)),
  ])

  expect(await metricValue(a.registry, 'indexer_consumed_total')).toBeGreaterThan(0)
  expect(await metricValue(b.registry, 'indexer_consumed_total')).toBeGreaterThan(0)
  const alerts = await alertsById(pipeline, 24)
  for (const id of before) expect(alerts.get(id)?.rules?.[0]?.version).toBe(1)
  for (const id of after.slice(0, 12)) expect(alerts.has(id)).toBe(false)
  for (const id of after.slice(12)) expect(alerts.get(id)?.rules?.[0]?.version).toBe(2)
})

it('keeps its rules and follows on after kafkajs gives up on the rules consumer', async () => {
  const pipeline = await createPipeline()
  const kafka = testKafka('indexer', pipeline.brokers)
  let crashes = 0
  // The batch holding the record keyed `crash` fails once with a non-retriable error: kafkajs
  // stops that consumer for good.
  const consumer = (config: ConsumerConfig) => {
    const real = kafka.consumer(config)
    if (!config.groupId.startsWith(`${pipeline.groupId}.rules-`)) return real
    return Object.assign(Object.create(real) as typeof real, {
      run: (run: ConsumerRunConfig) =>
        real.run({
          ...run,
          eachBatch: async (payload) => {
            if (crashes === 0 && payload.batch.messages.some((m) => m.key?.toString() === 'crash')) {
              crashes++
              throw new KafkaJSNonRetriableError('the rules consumer fails for good')
            }
            return run.eachBatch!(payload)
          },
        }),
    })
  }
  const { registry } = await startIndexer(pipeline, {}, pipeline.repository, {
    kafka: Object.assign(Object.create(kafka) as Kafka, { consumer }),
  })
  const v1 = rule()
  await publishRules(pipeline, [ruleRecord(v1)])
  await rulesApplied(registry, 1)
  await publishRules(pipeline, [{ key: 'crash', value: 'not a rule' }])
  await waitFor(() => crashes === 1, { what: 'the rules consumer crashed' })
  const [meanwhile] = await indexed(pipeline, [vehicle('Subaru', 'Legacy', 'Sedan', 2010)])

  const v2 = { ...v1, version: 2, match: { make: ['Subaru'], year: { min: 2020 } } }
  await publishRules(pipeline, [ruleRecord(v2)])
  await rulesApplied(registry, 2)
  const [old, recent] = await indexed(pipeline, [
    vehicle('Subaru', 'Legacy', 'Sedan', 2010),
    vehicle('Subaru', 'Legacy', 'Sedan', 2021),
  ])
  // The new consumer went on from where the old one was: nothing applied twice.
  expect(await metricValue(registry, 'indexer_rule_records_applied_total')).toBe(2)
  expect(await metricValue(registry, 'indexer_rule_records_invalid_total')).toBe(1)
  const alerts = await alertsById(pipeline, 2)
  expect(alerts.get(meanwhile!)?.rules?.[0]?.version).toBe(1)
  expect(alerts.has(old!)).toBe(false)
  expect(alerts.get(recent!)?.rules?.[0]?.version).toBe(2)
})
