// Alerts through a broker crash: the API's one in-process alerts consumer loses its broker
// (SIGKILL), the SSE client stays connected (or EventSource resumes with Last-Event-ID), and once
// the broker is back every alert reaches the client exactly once, in partition order. On a
// private broker: the shared one must never be stopped.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { type PrivateKafka, startPrivateKafka } from '../../../../test/support/private-kafka.js'
import {
  alertsConfig,
  createAlertsProducer,
  makeAlert,
  metricValue,
  PARTITIONS,
  startServer,
  subscribe,
  waitFor,
} from './helpers.js'

/**
 * Down this long, then about 15 s more while the restarted broker waits for its old registration
 * to expire: long enough for the consumer to give up its retries and crash (kafkajs restarts it).
 */
const DOWN_MS = 7_000

const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => makeAlert(from + i))
const seqOf = (alert: { model: string }) => Number(alert.model.split('-')[1])

describe('alerts through a broker restart', () => {
  let broker: PrivateKafka | undefined
  beforeAll(async () => {
    broker = await startPrivateKafka()
  }, 60_000)
  afterAll(() => broker?.destroy())

  it('delivers every alert exactly once, in partition order, and the consumer is ready again', async () => {
    if (!broker) throw new Error('no private broker')
    const { brokers } = broker
    const topic = `alerts-test-${randomUUID()}`
    const server = await startServer(alertsConfig(topic), { brokers })
    const started = Date.now()
    const readiness: { at: number; ready: boolean }[] = []
    const sampler = setInterval(() => {
      const ready = server.feature.ready()
      if (readiness.at(-1)?.ready !== ready) readiness.push({ at: Date.now() - started, ready })
    }, 100)
    onTestFinished(() => clearInterval(sampler))
    // Ready once its consumer has joined the group, which may take a rejoin on a busy machine.
    await waitFor(() => server.feature.ready(), { what: 'alerts consumer ready' })

    const client = subscribe(`${server.url}/alerts`, server.token())
    const opens: number[] = []
    client.source.addEventListener('open', () => opens.push(Date.now() - started))
    await waitFor(() => client.source.readyState === 1)

    // partition = send order % 3 = seq % 3 (sends are multiples of 3, one producer).
    const producer = await createAlertsProducer(topic, { brokers })
    const sent = batch(0, 150)
    for (let i = 0; i < 90; i += 15) await producer.send(sent.slice(i, i + 15))
    await client.waitFor(90, 15_000)

    const { downAt, upAt } = await broker.restart({ hard: true, downMs: DOWN_MS })
    for (let i = 90; i < sent.length; i += 15) await producer.send(sent.slice(i, i + 15))
    await client.waitFor(sent.length, 30_000)
    await waitFor(() => server.feature.ready(), { what: 'the alerts consumer ready again' })
    // Nothing more arrives: a duplicate would show up here.
    await new Promise((resolve) => setTimeout(resolve, 1_000))

    expect(client.alerts).toHaveLength(sent.length)
    expect(new Set(client.alerts.map((a) => a.id))).toEqual(new Set(sent.map((a) => a.id)))
    expect(new Set(client.ids).size).toBe(sent.length)
    for (let p = 0; p < PARTITIONS; p++) {
      const seqs = client.alerts.map(seqOf).filter((seq) => seq % PARTITIONS === p)
      expect(seqs).toEqual(sent.map(seqOf).filter((seq) => seq % PARTITIONS === p))
    }
    expect(await metricValue(server.registry, 'alerts_consumer_lag')).toBe(0)
    // Ready before the crash, not ready at some point while the broker was gone, ready again after.
    const at = (ms: number) => readiness.filter((r) => r.at <= ms).at(-1)?.ready
    expect(at(downAt - started)).toBe(true)
    expect(readiness.some((r) => !r.ready && r.at >= downAt - started && r.at < upAt - started)).toBe(true)
    expect(readiness.at(-1)?.ready).toBe(true)
    console.info('alerts broker restart', {
      downMs: upAt - downAt,
      downAt: downAt - started,
      upAt: upAt - started,
      opens,
      readiness,
      events: client.events.filter((e) => e.type !== 'alert'),
    })
  }, 85_000)
})
