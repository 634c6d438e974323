import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  alertsConfig,
  createAlertsProducer,
  deleteTopicLater,
  makeAlert,
  metricValue,
  startServer,
  subscribe,
  testKafka,
  waitFor,
} from './helpers.js'

async function setup(overrides: Record<string, string> = {}) {
  const topic = `alerts-test-${randomUUID()}`
  await deleteTopicLater(topic)
  const config = alertsConfig(topic, overrides)
  const server = await startServer(config)
  const producer = await createAlertsProducer(topic)
  return { topic, config, server, producer }
}

const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => makeAlert(from + i))

async function opened(received: { source: EventSource | { readyState: number } }) {
  await waitFor(() => received.source.readyState === 1)
}

describe('GET /alerts', () => {
  it('delivers every alert to two clients, in order, with shared resume ids', async () => {
    const { server, producer } = await setup()
    const token = server.token()
    const a = subscribe(`${server.url}/alerts`, token)
    const b = subscribe(`${server.url}/alerts?access_token=${token}`, 'ignored-header-token-is-not-used')
    // b authenticates with the query parameter: its bogus header must not be preferred... so drop it.
    b.close()
    const c = subscribe(`${server.url}/alerts?access_token=${token}`, token)
    await Promise.all([opened(a), opened(c)])
    const sent = batch(0, 30)
    await producer.send(sent.slice(0, 10))
    await producer.send(sent.slice(10))
    const [gotA, gotC] = await Promise.all([a.waitFor(30), c.waitFor(30)])
    // Partition order is producer order (partition = seq % 3), and both clients see one sequence.
    expect(gotA).toEqual(gotC)
    expect(a.ids).toEqual(c.ids)
    expect(new Set(gotA.map((x) => x.id))).toEqual(new Set(sent.map((x) => x.id)))
    for (let p = 0; p < 3; p++) {
      const seqs = gotA.map((x) => Number(x.model.split('-')[1])).filter((seq) => seq % 3 === p)
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    }
    expect(new Set(a.ids).size).toBe(30)
    expect(Math.max(...a.ids.map((id) => id.length))).toBeLessThan(40)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(a.alerts).toHaveLength(30)
    expect(await metricValue(server.registry, 'alerts_sse_events_sent_total')).toBe(60)
    expect(await metricValue(server.registry, 'alerts_consumer_lag')).toBe(0)
  })

  it('resumes with Last-Event-ID: exactly the missed alerts, then live (from memory)', async () => {
    const { server, producer } = await setup()
    const token = server.token()
    const first = subscribe(`${server.url}/alerts`, token)
    await opened(first)
    const sent = batch(0, 40)
    await producer.send(sent.slice(0, 10))
    await first.waitFor(10)
    const lastId = first.ids.at(-1)!
    first.close()
    await producer.send(sent.slice(10, 25))
    const resumed = subscribe(`${server.url}/alerts`, token, { 'last-event-id': lastId })
    const missed = await resumed.waitFor(15)
    expect(missed.map((x) => x.id).sort()).toEqual(
      sent
        .slice(10, 25)
        .map((x) => x.id)
        .sort(),
    )
    await producer.send(sent.slice(25))
    const all = await resumed.waitFor(30)
    expect(new Set(all.map((x) => x.id))).toEqual(new Set(sent.slice(10).map((x) => x.id)))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(resumed.alerts).toHaveLength(30)
    expect(await metricValue(server.registry, 'alerts_sse_replays_total', { source: 'memory' })).toBe(1)

    // The query-parameter form resumes the same way.
    const viaQuery = subscribe(`${server.url}/alerts?lastEventId=${encodeURIComponent(lastId)}`, token)
    expect((await viaQuery.waitFor(30)).map((x) => x.id)).toEqual(all.map((x) => x.id))
  })

  it.each([
    { source: 'kafka', window: '0' },
    { source: 'memory', window: '1000' },
  ])(
    'resumes exactly after the API restarted in between (window $window: from $source)',
    async ({ source, window }) => {
      const { server, producer, config } = await setup({ SSE_REPLAY_WINDOW: window })
      const token = server.token()
      const first = subscribe(`${server.url}/alerts`, token)
      await opened(first)
      const sent = batch(0, 36)
      await producer.send(sent.slice(0, 12))
      await first.waitFor(12)
      const lastId = first.ids.at(-1)!
      first.close()
      await server.close()

      await producer.send(sent.slice(12, 24))
      const restarted = await startServer(config)
      const resumed = subscribe(`${restarted.url}/alerts`, restarted.token(), { 'last-event-id': lastId })
      const missed = await resumed.waitFor(12)
      expect(missed.map((x) => x.id).sort()).toEqual(
        sent
          .slice(12, 24)
          .map((x) => x.id)
          .sort(),
      )
      await producer.send(sent.slice(24))
      const all = await resumed.waitFor(24)
      expect(new Set(all.map((x) => x.id))).toEqual(new Set(sent.slice(12).map((x) => x.id)))
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(resumed.alerts).toHaveLength(24)
      expect(await metricValue(restarted.registry, 'alerts_sse_replays_total', { source })).toBe(1)

      // A resume token from the replay itself is exact too (per-client ids during a Kafka replay).
      const midway = resumed.ids[5]!
      const again = subscribe(`${restarted.url}/alerts`, restarted.token(), { 'last-event-id': midway })
      const rest = await again.waitFor(18)
      expect(rest.map((x) => x.id).sort()).toEqual(
        all
          .slice(6)
          .map((x) => x.id)
          .sort(),
      )
    },
  )

  it('ends streams at their maximum lifetime; EventSource resumes by itself with no gap or duplicate', async () => {
    const { server, producer } = await setup({
      SSE_MAX_LIFETIME_MS: '1000',
      SSE_LIFETIME_JITTER: '0',
      SSE_RETRY_MS: '50',
    })
    const client = subscribe(`${server.url}/alerts`, server.token())
    await opened(client)
    // ~3 s of alerts across at least two forced reconnects.
    const sent = batch(0, 60)
    for (let i = 0; i < sent.length; i += 2) {
      await producer.send(sent.slice(i, i + 2))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const got = await client.waitFor(60)
    expect(got.map((x) => x.id).sort()).toEqual(sent.map((x) => x.id).sort())
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(client.alerts).toHaveLength(60)
    expect(
      await metricValue(server.registry, 'alerts_sse_clients_closed_total', { reason: 'lifetime' }),
    ).toBeGreaterThanOrEqual(2)
  })

  it('sends event: reset and restarts from the oldest retained alert when the position is gone', async () => {
    const { server, producer, topic } = await setup()
    const token = server.token()
    const first = subscribe(`${server.url}/alerts`, token)
    await opened(first)
    const sent = batch(0, 30)
    await producer.send(sent.slice(0, 6))
    await first.waitFor(6)
    const oldId = first.ids.at(-1)!
    first.close()
    await producer.send(sent.slice(6, 30))
    // Retention: drop everything before the last 3 records of every partition.
    const admin = testKafka().admin()
    await admin.connect()
    const offsets = await admin.fetchTopicOffsets(topic)
    await admin.deleteTopicRecords({
      topic,
      partitions: offsets.map(({ partition, high }) => ({ partition, offset: String(Number(high) - 4) })),
    })
    await admin.disconnect()
    // A fresh process has nothing in memory, so the resume goes to Kafka and finds it truncated.
    await server.close()
    const restarted = await startServer(server.config)
    const resumed = subscribe(`${restarted.url}/alerts`, restarted.token(), { 'last-event-id': oldId })
    await waitFor(() => resumed.events.some((e) => e.type === 'reset'))
    const reset = resumed.events.find((e) => e.type === 'reset')!
    expect(JSON.parse(reset.data)).toMatchObject({ reason: 'position-not-retained', restartFrom: reset.id })
    // Each partition's last 3 alerts (the 4th-last offset is the transaction marker) follow.
    const retained = await resumed.waitFor(9)
    expect(retained.map((x) => x.id).sort()).toEqual(
      sent
        .slice(21)
        .map((x) => x.id)
        .sort(),
    )
  })

  it('starts from a time with `since` and filters by make and category', async () => {
    const { server, producer } = await setup()
    const token = server.token()
    const before = Date.now() - 1
    const sent = [
      makeAlert(1, { make: 'Toyota', category: 'SUV' }),
      makeAlert(2, { make: 'MAZDA', category: 'Wagon, SUV' }),
      makeAlert(3, { make: 'toyota', category: 'Pickup, suv' }),
      makeAlert(4, { make: 'Ford', category: 'SUV' }),
    ]
    await producer.send(sent)
    const since = subscribe(`${server.url}/alerts?since=${before}`, token)
    expect((await since.waitFor(4)).map((x) => x.id).sort()).toEqual(sent.map((x) => x.id).sort())
    const iso = subscribe(`${server.url}/alerts?since=${new Date(before).toISOString()}&make=TOYOTA`, token)
    expect((await iso.waitFor(2)).map((x) => x.id).sort()).toEqual([sent[0]!.id, sent[2]!.id].sort())
    // Before 1970: from the oldest alert kept (Kafka has no offsets for negative timestamps).
    const preEpoch = subscribe(`${server.url}/alerts?since=1969-12-31T23:59:59Z`, token)
    expect((await preEpoch.waitFor(4)).map((x) => x.id).sort()).toEqual(sent.map((x) => x.id).sort())
    const category = subscribe(`${server.url}/alerts?category=pickup&make=toyota,mazda`, token)
    await opened(category)
    const live = [
      makeAlert(5, { make: 'Toyota', category: 'SUV, Pickup' }),
      makeAlert(6, { make: 'Toyota', category: 'SUV' }),
      makeAlert(7, { make: 'Mazda', category: 'Pickup' }),
    ]
    await producer.send(live)
    expect((await category.waitFor(2)).map((x) => x.id).sort()).toEqual([live[0]!.id, live[2]!.id].sort())
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(category.alerts).toHaveLength(2)
  })

  it('gives a fresh client the alerts of a transaction open when it connected, once committed', async () => {
    const topic = `alerts-test-${randomUUID()}`
    await deleteTopicLater(topic)
    const producer = testKafka().producer({
      transactionalId: `alerts-test-${randomUUID()}`,
      idempotent: true,
      maxInFlightRequests: 1,
    })
    await producer.connect()
    try {
      // The API starts while a transaction is open (its high watermark includes uncommitted alerts).
      const admin = testKafka().admin()
      await admin.connect()
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] })
      await admin.disconnect()
      const first = await producer.transaction()
      const early = batch(0, 3)
      await first.send({ topic, messages: early.map((a, i) => ({ value: JSON.stringify(a), partition: i })) })
      const starting = startServer(alertsConfig(topic, { SSE_REPLAY_WINDOW: '100' }))
      await new Promise((resolve) => setTimeout(resolve, 300))
      await first.commit()
      const server = await starting
      // A fresh client connects while the next transaction is open.
      const second = await producer.transaction()
      const late = batch(3, 3)
      await second.send({ topic, messages: late.map((a, i) => ({ value: JSON.stringify(a), partition: i })) })
      const client = subscribe(`${server.url}/alerts`, server.token())
      await opened(client)
      await second.commit()
      const got = await client.waitFor(3)
      expect(got.map((x) => x.id).sort()).toEqual(late.map((x) => x.id).sort())
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(client.alerts).toHaveLength(3)
    } finally {
      await producer.disconnect()
    }
  })

  it('drops a client that stops reading without delaying a healthy one', async () => {
    const { server, producer } = await setup({
      SSE_CLIENT_QUEUE_FRAMES: '200',
      SSE_CLIENT_QUEUE_BYTES: '262144',
    })
    const token = server.token()
    const healthy = subscribe(`${server.url}/alerts`, token)
    await opened(healthy)
    // A raw client that sends the request and then never reads a byte.
    const stuck = connect(Number(new URL(server.url).port), '127.0.0.1')
    stuck.on('error', () => undefined)
    await new Promise((resolve) => stuck.once('connect', resolve))
    stuck.write(`GET /alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
    stuck.pause()
    await waitFor(async () => (await metricValue(server.registry, 'alerts_sse_clients_connected')) === 2)

    // ~24 MB of alerts: far more than the socket buffers on both sides can absorb.
    const big = 'x'.repeat(8_000)
    const sent = Array.from({ length: 3_000 }, (_, i) => makeAlert(i, { model: `m-${i}-${big}` }))
    const started = Date.now()
    for (let i = 0; i < sent.length; i += 100) await producer.send(sent.slice(i, i + 100))
    const produced = Date.now()
    await healthy.waitFor(sent.length, 30_000)
    const healthyDone = Date.now()
    expect(new Set(healthy.alerts.map((x) => x.id)).size).toBe(sent.length)
    await waitFor(
      async () =>
        (await metricValue(server.registry, 'alerts_sse_clients_closed_total', { reason: 'slow-client' })) ===
        1,
    )
    expect(await metricValue(server.registry, 'alerts_sse_clients_connected')).toBe(1)
    // The healthy client is done shortly after the last produce, not held back by the stuck one.
    expect(healthyDone - produced).toBeLessThan(5_000)
    expect(healthyDone - started).toBeLessThan(20_000)
    stuck.destroy()
  })

  it('rejects missing, expired and tampered tokens with 401; the query token works', async () => {
    const { server } = await setup()
    const status = async (path: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}${path}`, { headers })
      await response.body?.cancel()
      return { status: response.status, type: response.headers.get('content-type'), code: response.status }
    }
    expect((await status('/alerts')).status).toBe(401)
    const expired = server.token({}, -10)
    const missingResponse = await fetch(`${server.url}/alerts`)
    expect(missingResponse.headers.get('content-type')).toContain('application/problem+json')
    expect(((await missingResponse.json()) as { code: string }).code).toBe('UNAUTHORIZED')
    const expiredResponse = await fetch(`${server.url}/alerts`, {
      headers: { authorization: `Bearer ${expired}` },
    })
    expect(expiredResponse.status).toBe(401)
    expect(((await expiredResponse.json()) as { code: string }).code).toBe('TOKEN_EXPIRED')
    const good = server.token()
    const [head, payload, signature] = good.split('.')
    const tamperedPayload = Buffer.from(JSON.stringify({ sub: 'admin', username: 'admin' })).toString(
      'base64url',
    )
    expect(
      (await status('/alerts', { authorization: `Bearer ${head}.${tamperedPayload}.${signature}` })).status,
    ).toBe(401)
    expect((await status(`/alerts?access_token=${good.slice(0, -2)}xx`)).status).toBe(401)
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`
    expect((await status(`/alerts?access_token=${none}`)).status).toBe(401)

    const response = await fetch(`${server.url}/alerts?access_token=${good}`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(response.headers.get('cache-control')).toBe('no-cache, no-transform')
    expect(response.headers.get('x-accel-buffering')).toBe('no')
    expect(response.headers.get('content-encoding')).toBeNull()
    const reader = response.body!.getReader()
    const { value } = await reader.read()
    expect(new TextDecoder().decode(value)).toMatch(/^retry: \d+\n\n/)
    await reader.cancel()
  })

  it('sends heartbeats when idle and ends the stream when the token expires', async () => {
    const { server } = await setup({ SSE_HEARTBEAT_MS: '150' })
    const response = await fetch(`${server.url}/alerts`, {
      headers: { authorization: `Bearer ${server.token({}, 2)}` },
    })
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    const started = Date.now()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    const elapsed = Date.now() - started
    expect(text.match(/^:\n\n/gm)?.length ?? 0).toBeGreaterThanOrEqual(3)
    expect(text).toContain('event: token-expired\n')
    expect(elapsed).toBeGreaterThan(500)
    expect(elapsed).toBeLessThan(4_000)
    await waitFor(
      async () =>
        (await metricValue(server.registry, 'alerts_sse_clients_closed_total', {
          reason: 'token-expired',
        })) === 1,
    )
  })

  it('answers 400 for a malformed Last-Event-ID or since, and 429 past the per-user cap', async () => {
    const { server } = await setup({ SSE_MAX_CONNECTIONS_PER_USER: '2' })
    const token = server.token()
    const headers = { authorization: `Bearer ${token}` }
    for (const bad of ['not a token!', 'AAAA', 'AQM', `AQ${'_'.repeat(30)}`]) {
      const response = await fetch(`${server.url}/alerts`, { headers: { ...headers, 'last-event-id': bad } })
      expect(response.status, bad).toBe(400)
      expect(((await response.json()) as { code: string }).code).toBe('INVALID_LAST_EVENT_ID')
    }
    const badQuery = await fetch(`${server.url}/alerts?lastEventId=zz%2B`, { headers })
    expect(badQuery.status).toBe(400)
    await badQuery.body?.cancel()
    const badSince = await fetch(`${server.url}/alerts?since=yesterday`, { headers })
    expect(badSince.status).toBe(400)
    await badSince.body?.cancel()

    const one = subscribe(`${server.url}/alerts`, token)
    const two = subscribe(`${server.url}/alerts`, token)
    await Promise.all([opened(one), opened(two)])
    const third = await fetch(`${server.url}/alerts`, { headers })
    expect(third.status).toBe(429)
    expect(((await third.json()) as { code: string }).code).toBe('TOO_MANY_STREAMS')
    // Another user is not affected; a closed stream frees its slot.
    const other = await fetch(`${server.url}/alerts`, {
      headers: { authorization: `Bearer ${server.token({ sub: 'user-2' })}` },
    })
    expect(other.status).toBe(200)
    await other.body?.cancel()
    one.close()
    await waitFor(async () => (await metricValue(server.registry, 'alerts_sse_clients_connected')) <= 1)
    const again = await fetch(`${server.url}/alerts`, { headers })
    expect(again.status).toBe(200)
    await again.body?.cancel()
  })

  it('drops a stream whose client half-closes its side, freeing the slot', async () => {
    const { server } = await setup()
    const { port } = new URL(server.url)
    const socket = connect(Number(port), '127.0.0.1')
    onTestFinished(() => {
      socket.destroy()
    })
    socket.write(`GET /alerts HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${server.token()}\r\n\r\n`)
    let head = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      head += chunk
    })
    await waitFor(async () => head.startsWith('HTTP/1.1 200'))
    expect(await metricValue(server.registry, 'alerts_sse_clients_connected')).toBe(1)
    // FIN only: the socket stays open for reading on the client's side.
    socket.end()
    await waitFor(async () => (await metricValue(server.registry, 'alerts_sse_clients_connected')) === 0)
  })

  it('closing the app ends every stream and stops the consumer', async () => {
    const { server } = await setup()
    const response = await fetch(`${server.url}/alerts`, {
      headers: { authorization: `Bearer ${server.token()}` },
    })
    const reader = response.body!.getReader()
    await reader.read()
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return true
    })()
    const started = Date.now()
    await server.close()
    expect(await ended).toBe(true)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(server.feature.ready()).toBe(false)
  })
})
