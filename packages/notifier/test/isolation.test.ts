// One black-holed endpoint (accepts TCP, never answers) beside a healthy one: the healthy one's
// alerts must not wait behind the black hole's timeouts.

import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitFor } from '../../../test/support/wait.js'
import {
  createAlertsTopic,
  createEndpoint,
  createReceiver,
  createTestDatabase,
  createUser,
  notifierEnv,
  startNotifier,
  testAlert,
} from './helpers.js'

const ALERTS = 1_000
const PER_ENDPOINT = 8

describe('per-endpoint isolation', () => {
  it('delivers 1,000 alerts to a healthy endpoint at full speed while another never answers', async () => {
    const blackHole = createServer()
    const open = new Set<Socket>()
    let mostOpen = 0
    let accepted = 0
    blackHole.on('connection', (socket) => {
      accepted++
      // Read and drop what arrives (a paused socket would never report the client's close).
      socket.resume()
      open.add(socket)
      mostOpen = Math.max(mostOpen, open.size)
      socket.on('close', () => open.delete(socket))
      socket.on('error', () => {})
    })
    blackHole.listen(0, '127.0.0.1')
    await once(blackHole, 'listening')
    onTestFinished(() => {
      for (const socket of open) socket.destroy()
      return new Promise<void>((resolve) => blackHole.close(() => resolve()))
    })
    const port = (blackHole.address() as { port: number }).port

    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const owner = await createUser(database.pool)
    await createEndpoint(database.pool, owner, `http://127.0.0.1:${port}/never`)
    const healthy = await createReceiver()
    await createEndpoint(database.pool, owner, healthy.url)
    await startNotifier(
      notifierEnv(database, topic.name, {
        WEBHOOK_ENDPOINT_CONCURRENCY: String(PER_ENDPOINT),
        WEBHOOK_RESPONSE_TIMEOUT: '2s',
        WEBHOOK_TOTAL_TIMEOUT: '2s',
        WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s,1s,1s,1s,1s,1s,1s,1s',
      }),
    )

    const published = new Map<string, number>()
    for (let chunk = 0; chunk < 10; chunk++) {
      const alerts = Array.from({ length: ALERTS / 10 }, (_, i) => testAlert(chunk * 100 + i))
      await topic.publish(alerts)
      const at = Date.now()
      for (const alert of alerts) published.set(alert.id, at)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await waitFor(() => healthy.requests.length >= ALERTS, {
      timeoutMs: 60_000,
      what: () => `the healthy endpoint to get every alert (${healthy.requests.length}/${ALERTS})`,
    })
    const latencies = healthy.requests
      .map((r) => r.receivedAt - published.get((JSON.parse(r.body) as { data: { id: string } }).data.id)!)
      .sort((a, b) => a - b)
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
    console.log(
      `isolation: ${ALERTS} alerts to the healthy endpoint beside a black hole: ` +
        `p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${latencies.at(-1)} ms (from the producer's ack); ` +
        `black hole: ${accepted} connections, at most ${mostOpen} open at once`,
    )
    expect(new Set(healthy.requests.map((r) => r.headers['webhook-id'])).size).toBe(ALERTS)
    // Generous bound: the black hole's 2 s timeouts must not stand in the healthy endpoint's way.
    expect(p(0.99)).toBeLessThan(10_000)
    expect(accepted).toBeGreaterThan(0)
    // Bounded by the per-endpoint limit; the server may see a timed-out socket's close a moment
    // after the connection that replaces it, hence the margin.
    expect(mostOpen).toBeLessThanOrEqual(2 * PER_ENDPOINT)
  })
})
