// GET /alerts with the live streams spread over fan-out processes (SSE_FANOUT_PROCESSES): the
// same app, route, consumer and replays; what clients observe must not change.
import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  alertsConfig,
  createAlertsProducer,
  deleteTopicLater,
  makeAlert,
  metricValue,
  startServer,
  subscribe,
  waitFor,
} from './helpers.js'

async function setup(overrides: Record<string, string> = {}) {
  const topic = `alerts-test-${randomUUID()}`
  await deleteTopicLater(topic)
  const server = await startServer(alertsConfig(topic, { SSE_FANOUT_PROCESSES: '2', ...overrides }))
  const producer = await createAlertsProducer(topic)
  return { server, producer }
}

const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => makeAlert(from + i))

describe('GET /alerts over fan-out processes', () => {
  it('delivers every alert once, in order, and resumes with Last-Event-ID with no gap or duplicate', async () => {
    const { server, producer } = await setup()
    const token = server.token()
    const a = subscribe(`${server.url}/alerts`, token)
    const b = subscribe(`${server.url}/alerts`, token)
    await waitFor(() => a.source.readyState === 1 && b.source.readyState === 1)
    const sent = batch(0, 40)
    await producer.send(sent.slice(0, 20))
    const [gotA, gotB] = await Promise.all([a.waitFor(20), b.waitFor(20)])
    expect(gotA).toEqual(gotB)
    expect(a.ids).toEqual(b.ids)
    expect(new Set(gotA.map((x) => x.id))).toEqual(new Set(sent.slice(0, 20).map((x) => x.id)))
    for (let p = 0; p < 3; p++) {
      const seqs = gotA.map((x) => Number(x.model.split('-')[1])).filter((seq) => seq % 3 === p)
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    }

    const lastId = a.ids.at(-1)!
    a.close()
    await producer.send(sent.slice(20, 30))
    const resumed = subscribe(`${server.url}/alerts`, token, { 'last-event-id': lastId })
    await resumed.waitFor(10)
    await producer.send(sent.slice(30))
    const all = await resumed.waitFor(20)
    expect(all.map((x) => x.id).sort()).toEqual(
      sent
        .slice(20)
        .map((x) => x.id)
        .sort(),
    )
    await b.waitFor(40)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(resumed.alerts).toHaveLength(20)
    expect(b.alerts).toHaveLength(40)
    // Counted by the fan-out processes, reported to this one.
    await waitFor(async () => (await metricValue(server.registry, 'alerts_sse_events_sent_total')) === 80)
    expect(await metricValue(server.registry, 'alerts_sse_clients_connected')).toBe(2)
  })

  it('drops a client that stops reading, in its fan-out process, without holding back the others', async () => {
    const { server, producer } = await setup({
      SSE_CLIENT_QUEUE_FRAMES: '200',
      SSE_CLIENT_QUEUE_BYTES: '262144',
    })
    const token = server.token()
    const healthy = subscribe(`${server.url}/alerts`, token)
    await waitFor(() => healthy.source.readyState === 1)
    const stuck = connect(Number(new URL(server.url).port), '127.0.0.1')
    stuck.on('error', () => undefined)
    await new Promise((resolve) => stuck.once('connect', resolve))
    stuck.write(`GET /alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
    stuck.pause()
    await waitFor(async () => (await metricValue(server.registry, 'alerts_sse_clients_connected')) === 2)
    const big = 'x'.repeat(8_000)
    const sent = Array.from({ length: 2_000 }, (_, i) => makeAlert(i, { model: `m-${i}-${big}` }))
    for (let i = 0; i < sent.length; i += 100) await producer.send(sent.slice(i, i + 100))
    await healthy.waitFor(sent.length, 30_000)
    expect(new Set(healthy.alerts.map((x) => x.id)).size).toBe(sent.length)
    await waitFor(
      async () =>
        (await metricValue(server.registry, 'alerts_sse_clients_closed_total', { reason: 'slow-client' })) ===
        1,
    )
    await waitFor(async () => (await metricValue(server.registry, 'alerts_sse_clients_connected')) === 1)
    stuck.destroy()
  })
})
