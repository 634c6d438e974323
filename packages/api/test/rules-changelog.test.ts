// Rule changes reach the compacted changelog topic through the outbox: within the app, after a
// crash between the PostgreSQL commit and the publish, while Kafka refuses, and from two replicas.
import { randomUUID } from 'node:crypto'
import { type DecodedRuleRecord, decodeRuleRecord, type RuleRecordMessage } from '@intellisite/alert-rules'
import { CompressionTypes, ConfigResourceTypes, type Consumer } from 'kafkajs'
import pino from 'pino'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { testKafka } from '../../../test/support/kafka.js'
import { waitFor } from '../../../test/support/wait.js'
import { createRulesPublisher } from '../src/rules/index.js'
import { createRulesRelay } from '../src/rules/rules-relay.js'
import {
  createPostgresDatabase,
  createTestApp,
  createUserAndToken,
  type TestApp,
  type TestAppParts,
} from './helper.js'

const topics: string[] = []
afterAll(async () => {
  const admin = testKafka(`rules-test-${randomUUID()}`).admin()
  await admin.connect()
  await admin.deleteTopics({ topics }).catch(() => undefined)
  await admin.disconnect()
})

function newTopic(): string {
  const topic = `rules-test-${randomUUID()}`
  topics.push(topic)
  return topic
}

interface Received {
  key: string
  decoded: DecodedRuleRecord
}

/** Every record of the topic from its start, as they arrive. */
async function readTopic(topic: string): Promise<{ records: Received[]; consumer: Consumer }> {
  const consumer = testKafka(`rules-test-${randomUUID()}`).consumer({ groupId: `rules-test-${randomUUID()}` })
  const records: Received[] = []
  await consumer.connect()
  onTestFinished(() => consumer.disconnect())
  await waitFor(
    async () => {
      const admin = testKafka().admin()
      await admin.connect()
      try {
        return (await admin.listTopics()).includes(topic)
      } finally {
        await admin.disconnect()
      }
    },
    { what: `topic ${topic}` },
  )
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      records.push({ key: String(message.key), decoded: decodeRuleRecord(message.key, message.value) })
    },
  })
  return { records, consumer }
}

const publisherFor = (topic: string) => (deps: TestAppParts) =>
  createRulesPublisher({
    kafka: testKafka(`rules-test-${randomUUID()}`),
    pool: deps.pool,
    config: { ...deps.config, ALERT_RULES_TOPIC: topic },
    logger: deps.logger,
    registry: deps.registry,
  })

async function outboxSize(t: TestApp): Promise<number> {
  return (await t.pool.query('SELECT count(*)::int AS n FROM rules_outbox')).rows[0].n
}

describe('the rules changelog', () => {
  it('publishes every change of a rule, the deletion as a tombstone, on a compacted topic', async () => {
    const topic = newTopic()
    const t = await createTestApp({ rulesPublisher: publisherFor(topic) })
    onTestFinished(() => t.close())
    const { headers, user } = await createUserAndToken(t)
    const { records } = await readTopic(topic)

    const admin = testKafka().admin()
    await admin.connect()
    const [described] = (
      await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] }],
        includeSynonyms: false,
      })
    ).resources
    await admin.disconnect()
    expect(described?.configEntries[0]?.configValue).toBe('compact')

    const created = await t.inject({
      method: 'POST',
      url: '/rules',
      headers,
      payload: { name: 'watched', watchlist: true },
    })
    const { id } = created.json<{ id: string }>()
    // Each change is on the topic before the next is made (the relay publishes the state a rule has
    // when it publishes: changes made in a burst may reach the topic as their last state only).
    const published = (version: number) =>
      waitFor(() => records.some((r) => r.decoded.kind === 'upsert' && r.decoded.rule.version === version), {
        what: `version ${version} on the topic`,
      })
    await published(1)
    await t.inject({
      method: 'PUT',
      url: `/rules/${id}/entries`,
      headers: { ...headers, 'content-type': 'text/csv' },
      payload: 'Toyota,Land Cruiser,2000,2005\nJeep,Wrangler\n',
    })
    await published(2)
    await t.inject({ method: 'PATCH', url: `/rules/${id}`, headers, payload: { enabled: false } })
    await published(3)
    await t.inject({ method: 'DELETE', url: `/rules/${id}`, headers })

    await waitFor(() => records.some((r) => r.decoded.kind === 'delete'), { what: 'the tombstone' })
    expect(records.every((r) => r.key === id)).toBe(true)
    const upserts = records.flatMap((r) => (r.decoded.kind === 'upsert' ? [r.decoded.rule] : []))
    expect(upserts.map((r) => r.version)).toEqual([1, 2, 3])
    expect(upserts.at(-1)).toEqual({
      id,
      version: 3,
      name: 'watched',
      owner: user.id,
      scope: 'private',
      enabled: false,
      watchlist: true,
      match: {},
      entries: [
        { make: 'Toyota', model: 'Land Cruiser', yearMin: 2000, yearMax: 2005 },
        { make: 'Jeep', model: 'Wrangler' },
      ],
    })
    expect(records.at(-1)?.decoded).toEqual({ kind: 'delete', id })
    expect(await outboxSize(t)).toBe(0)

    const metrics = (await t.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/rules_changelog_records_published_total\{kind="tombstone"\} 1/)
    expect(metrics).toMatch(/rules_outbox_pending 0/)
  })

  it('publishes a watch list of 100,000 entries as one record', async () => {
    const topic = newTopic()
    const t = await createTestApp({ rulesPublisher: publisherFor(topic) })
    onTestFinished(() => t.close())
    const { headers } = await createUserAndToken(t)
    const { records } = await readTopic(topic)
    const created = await t.inject({
      method: 'POST',
      url: '/rules',
      headers,
      payload: { name: 'big', watchlist: true },
    })
    const { id } = created.json<{ id: string }>()
    const rows = Array.from(
      { length: 100_000 },
      (_, i) => `Make ${i % 61},Model number ${i},${1990 + (i % 30)},`,
    )
    const uploaded = await t.inject({
      method: 'PUT',
      url: `/rules/${id}/entries`,
      headers: { ...headers, 'content-type': 'text/csv' },
      payload: rows.join('\n'),
    })
    expect(uploaded.statusCode, uploaded.body.slice(0, 300)).toBe(200)
    await waitFor(() => records.some((r) => r.decoded.kind === 'upsert' && r.decoded.rule.version === 2), {
      what: 'version 2 on the topic',
      timeoutMs: 60_000,
    })
    const last = records.at(-1)?.decoded
    expect(last?.kind).toBe('upsert')
    if (last?.kind !== 'upsert') return
    expect(last.rule.entries).toHaveLength(100_000)
    expect(last.rule.entries[99_999]).toEqual({ make: 'Make 20', model: 'Model number 99999', yearMin: 1999 })
  }, 120_000)

  it('publishes at start what was committed but never published (a crash between the two)', async () => {
    const topic = newTopic()
    const database = await createPostgresDatabase()
    onTestFinished(database.drop)
    // An API that commits rule changes and dies before publishing them: no publisher at all.
    const crashed = await createTestApp({ databaseUrl: database.url })
    const { headers } = await createUserAndToken(crashed)
    const created = await crashed.inject({
      method: 'POST',
      url: '/rules',
      headers,
      payload: { name: 'left behind', match: { make: ['Kia'] } },
    })
    const { id } = created.json<{ id: string }>()
    await crashed.inject({
      method: 'PATCH',
      url: `/rules/${id}`,
      headers,
      payload: { name: 'left behind twice' },
    })
    expect(await outboxSize(crashed)).toBe(2)
    await crashed.close()

    const restarted = await createTestApp({ databaseUrl: database.url, rulesPublisher: publisherFor(topic) })
    onTestFinished(() => restarted.close())
    // The app is ready: the outbox was published before it would take traffic.
    expect(await outboxSize(restarted)).toBe(0)
    const { records } = await readTopic(topic)
    await waitFor(() => records.length >= 1, { what: 'the rule on the topic' })
    expect(records[0]?.decoded).toMatchObject({
      kind: 'upsert',
      rule: { id, version: 2, name: 'left behind twice' },
    })
  })
})

describe('the outbox relay', () => {
  async function setUp() {
    const topic = newTopic()
    const t = await createTestApp()
    onTestFinished(() => t.close())
    const kafka = testKafka(`rules-test-${randomUUID()}`)
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    await admin.disconnect()
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    onTestFinished(() => producer.disconnect())
    const send = async (record: RuleRecordMessage) => {
      await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: [record] })
    }
    const { headers } = await createUserAndToken(t)
    return { t, topic, send, headers }
  }

  it('keeps the changes while publishing fails and publishes them once it works again', async () => {
    const { t, topic, send, headers } = await setUp()
    let brokerDown = true
    let attempts = 0
    const relay = createRulesRelay({
      pool: t.pool,
      logger: pino({ level: 'silent' }),
      intervalMs: 60_000,
      retryMaxMs: 200,
      send: async (record) => {
        attempts++
        if (brokerDown) throw new Error('broker unreachable')
        await send(record)
      },
    })
    onTestFinished(() => relay.close())
    const created = await t.inject({
      method: 'POST',
      url: '/rules',
      headers,
      payload: { name: 'r', match: { make: ['Kia'] } },
    })
    const { id } = created.json<{ id: string }>()
    await relay.start()
    await waitFor(() => attempts >= 3, { what: 'retries' })
    expect(await outboxSize(t)).toBe(1)

    brokerDown = false
    await waitFor(async () => (await outboxSize(t)) === 0, { what: 'the outbox to empty' })
    const { records } = await readTopic(topic)
    await waitFor(() => records.length === 1, { what: 'the record' })
    expect(records[0]?.decoded).toMatchObject({ kind: 'upsert', rule: { id, version: 1 } })
  })

  it('never publishes an older state after a newer one, with two replicas publishing the same rule', async () => {
    const { t, topic, send, headers } = await setUp()
    const logger = pino({ level: 'silent' })
    // Replica A reads version 1, then stalls in its publish (a slow broker round trip) until let go.
    let release = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    let slowEntered = false
    const slow = createRulesRelay({
      pool: t.pool,
      logger,
      intervalMs: 60_000,
      retryMaxMs: 200,
      send: async (record) => {
        slowEntered = true
        await released
        await send(record)
      },
    })
    let fastSent = 0
    const fast = createRulesRelay({
      pool: t.pool,
      logger,
      intervalMs: 60_000,
      retryMaxMs: 200,
      send: async (record) => {
        await send(record)
        fastSent++
      },
    })
    onTestFinished(async () => {
      release()
      await Promise.all([slow.close(), fast.close()])
    })

    const created = await t.inject({
      method: 'POST',
      url: '/rules',
      headers,
      payload: { name: 'r', match: { make: ['Kia'] } },
    })
    const { id } = created.json<{ id: string }>()
    slow.notify()
    await waitFor(() => slowEntered, { what: 'replica A to read version 1' })
    await t.inject({ method: 'PATCH', url: `/rules/${id}`, headers, payload: { name: 'r v2' } })
    // Replica B takes version 2's outbox row (A holds only version 1's) and must wait for A.
    fast.notify()
    const waitingForLock = async () =>
      (
        await t.pool.query(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
        )
      ).rows[0].n > 0
    await waitFor(async () => fastSent > 0 || (await waitingForLock()), {
      what: 'replica B to publish or wait',
    })
    release()
    await waitFor(async () => (await outboxSize(t)) === 0, { what: 'the outbox to empty' })

    const { records } = await readTopic(topic)
    await waitFor(() => records.length >= 2, { what: 'both records' })
    const versions = records.map((r) => (r.decoded.kind === 'upsert' ? r.decoded.rule.version : -1))
    expect(versions).toEqual([1, 2])
  })
})
