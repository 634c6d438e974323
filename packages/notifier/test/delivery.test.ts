// Deliveries end to end on the real broker and PostgreSQL, to receivers on loopback; every
// signature is checked with the `standardwebhooks` package, never with our own code.

import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { generateSecret } from '@intellisite/webhooks'
import { Webhook } from 'standardwebhooks'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitFor } from '../../../test/support/wait.js'
import {
  createAlertsTopic,
  createEndpoint,
  createReceiver,
  createTestDatabase,
  createUser,
  deliveryStates,
  notifierEnv,
  type ReceivedRequest,
  startNotifier,
  testAlert,
} from './helpers.js'

const bodyOf = (request: ReceivedRequest) =>
  JSON.parse(request.body) as { type: string; data: { id: string } }

describe('delivering alerts to webhooks', () => {
  it('signs each delivery per Standard Webhooks, to every endpoint whose owner may see the alert', async () => {
    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const alice = await createUser(database.pool)
    const bob = await createUser(database.pool)
    const aliceReceiver = await createReceiver()
    const bobReceiver = await createReceiver()
    const filteredReceiver = await createReceiver()
    const aliceEndpoint = await createEndpoint(database.pool, alice, aliceReceiver.url)
    const bobEndpoint = await createEndpoint(database.pool, bob, bobReceiver.url)
    // Only alerts of a rule none of these alerts matched.
    await createEndpoint(database.pool, alice, filteredReceiver.url, { rules: [randomUUID()] })
    await startNotifier(notifierEnv(database, topic.name))

    const shared = [testAlert(1), testAlert(2), testAlert(3)]
    const bobsRule = {
      id: randomUUID(),
      version: 2,
      name: 'bob watch list',
      scope: 'private' as const,
      owner: bob,
    }
    const bobsOnly = testAlert(4, [bobsRule])
    await topic.publish([...shared, bobsOnly])

    await waitFor(() => aliceReceiver.requests.length >= 3 && bobReceiver.requests.length >= 4, {
      what: () =>
        `deliveries (alice ${aliceReceiver.requests.length}/3, bob ${bobReceiver.requests.length}/4)`,
    })
    const aliceHook = new Webhook(aliceEndpoint.secret)
    const bobHook = new Webhook(bobEndpoint.secret)
    for (const request of aliceReceiver.requests) {
      const verified = aliceHook.verify(request.body, request.headers as Record<string, string>)
      expect(verified).toEqual(JSON.parse(request.body))
      expect(request.headers['webhook-id']).toMatch(/^msg_[0-9a-f-]{36}$/)
      expect(request.headers['content-type']).toBe('application/json')
      // A tampered body, or another secret, does not verify.
      const tampered = request.body.replace('"Toyota"', '"Lexus"')
      expect(tampered).not.toBe(request.body)
      expect(() => aliceHook.verify(tampered, request.headers as Record<string, string>)).toThrow(/signature/)
      expect(() =>
        new Webhook(generateSecret()).verify(request.body, request.headers as Record<string, string>),
      ).toThrow(/signature/)
      expect(() => bobHook.verify(request.body, request.headers as Record<string, string>)).toThrow()
    }
    expect(aliceReceiver.requests.map((r) => bodyOf(r).data.id).sort()).toEqual(
      shared.map((a) => a.id).sort(),
    )
    for (const request of bobReceiver.requests)
      bobHook.verify(request.body, request.headers as Record<string, string>)
    const bobsPrivate = bobReceiver.requests.map(bodyOf).find((body) => body.data.id === bobsOnly.id)
    expect(bobsPrivate).toMatchObject({
      type: 'alert',
      data: { rules: [{ id: bobsRule.id, name: 'bob watch list' }] },
    })
    // Owners never leave the system.
    expect(JSON.stringify(bobsPrivate)).not.toContain(bob)
    // Ids differ per endpoint for the same alert.
    const aliceIds = new Set(aliceReceiver.requests.map((r) => r.headers['webhook-id']))
    expect(bobReceiver.requests.some((r) => aliceIds.has(r.headers['webhook-id']))).toBe(false)

    // During a rotation's overlap both secrets sign: a receiver holding either verifies.
    const rotated = generateSecret()
    await database.pool.query(
      "UPDATE webhooks SET previous_secret = secret, secret = $2, previous_secret_expires_at = now() + interval '1 hour' WHERE id = $1",
      [aliceEndpoint.id, rotated],
    )
    const later = testAlert(5)
    await topic.publish([later])
    await waitFor(() => aliceReceiver.requests.some((r) => bodyOf(r).data.id === later.id), {
      what: 'the fifth alert',
    })
    const last = aliceReceiver.requests.find((r) => bodyOf(r).data.id === later.id)!
    expect(String(last.headers['webhook-signature']).split(' ')).toHaveLength(2)
    new Webhook(rotated).verify(last.body, last.headers as Record<string, string>)
    aliceHook.verify(last.body, last.headers as Record<string, string>)

    expect(filteredReceiver.requests).toHaveLength(0)
    const { rows } = await database.pool.query('SELECT count(*)::int AS n FROM webhook_deliveries')
    expect(rows[0].n).toBe(3 + 4 + 1 + 1)
  })

  it('delivers every alert once the receiver is back, with the same webhook-id on every attempt', async () => {
    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const owner = await createUser(database.pool)
    const receiver = await createReceiver()
    const endpoint = await createEndpoint(database.pool, owner, receiver.url)
    await receiver.stop()
    // Compressed schedule (the real one: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h).
    await startNotifier(notifierEnv(database, topic.name))
    const alerts = Array.from({ length: 20 }, (_, i) => testAlert(i))
    await topic.publish(alerts)
    await waitFor(
      async () => {
        const { rows } = await database.pool.query('SELECT min(attempts)::int AS n FROM webhook_deliveries')
        return rows[0].n >= 2
      },
      { what: 'two failed attempts at every delivery' },
    )
    // Midway it answers 503 for a while, then it is healthy.
    await receiver.start()
    let unavailable = 5
    receiver.respond = (_request, response) => {
      if (unavailable-- > 0) response.writeHead(503).end('busy')
      else response.writeHead(200).end('ok')
    }
    await waitFor(async () => (await deliveryStates(database.pool)).delivered === 20, {
      what: 'every delivery delivered',
    })
    const hook = new Webhook(endpoint.secret)
    const ids = new Map<string, Set<string>>()
    for (const request of receiver.requests) {
      hook.verify(request.body, request.headers as Record<string, string>)
      const alertId = bodyOf(request).data.id
      ids.set(alertId, (ids.get(alertId) ?? new Set()).add(String(request.headers['webhook-id'])))
    }
    expect([...ids.keys()].sort()).toEqual(alerts.map((a) => a.id).sort())
    for (const set of ids.values()) expect(set.size).toBe(1)
    const { rows } = await database.pool.query(
      'SELECT d.attempts, count(a.id)::int AS logged FROM webhook_deliveries d JOIN webhook_attempts a ON a.delivery_id = d.id GROUP BY d.id',
    )
    for (const row of rows) {
      expect(row.attempts).toBeGreaterThanOrEqual(3)
      expect(row.logged).toBe(row.attempts)
    }
  })

  it('disables an endpoint that answers 500 for ever, with its reason, while the others go on', async () => {
    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const owner = await createUser(database.pool)
    const failing = await createReceiver()
    failing.respond = (_request, response) => response.writeHead(500).end('database on fire')
    const healthy = await createReceiver()
    const gone = await createReceiver()
    gone.respond = (_request, response) => response.writeHead(410).end()
    const failingEndpoint = await createEndpoint(database.pool, owner, failing.url)
    const goneEndpoint = await createEndpoint(database.pool, owner, gone.url)
    await createEndpoint(database.pool, owner, healthy.url)
    const running = await startNotifier(
      notifierEnv(database, topic.name, {
        WEBHOOK_DISABLE_AFTER_FAILURES: '6',
        WEBHOOK_DISABLE_MIN_SPAN: '1s',
        WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms',
      }),
    )
    const alerts = Array.from({ length: 10 }, (_, i) => testAlert(i))
    await topic.publish(alerts)
    const endpointOf = async (id: string) =>
      (await database.pool.query('SELECT enabled, disabled_reason FROM webhooks WHERE id = $1', [id])).rows[0]
    await waitFor(async () => !(await endpointOf(failingEndpoint.id)).enabled, {
      what: 'the failing endpoint disabled',
    })
    expect((await endpointOf(failingEndpoint.id)).disabled_reason).toMatch(
      /^\d+ failed attempts in a row over \d+ s; last: HTTP 500: database on fire$/,
    )
    expect(await endpointOf(goneEndpoint.id)).toEqual({
      enabled: false,
      disabled_reason: 'the endpoint answered 410 Gone',
    })
    // Only what was already in flight when the first 410 came (at most the per-endpoint limit).
    expect(gone.requests.length).toBeLessThanOrEqual(8)
    await waitFor(() => healthy.requests.length >= 10, { what: 'the healthy endpoint to get every alert' })
    expect(new Set(healthy.requests.map((r) => bodyOf(r).data.id)).size).toBe(10)

    // Disabled: no attempt any more (once those in flight when it happened have ended); its
    // deliveries wait, pending, for it to be enabled again.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const seen = failing.requests.length
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    expect(failing.requests.length).toBe(seen)
    const { rows } = await database.pool.query(
      "SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending'",
      [failingEndpoint.id],
    )
    expect(rows[0].n).toBeGreaterThan(0)
    const metrics = await running.registry.metrics()
    expect(metrics).toMatch(/notifier_endpoints_disabled_total\{cause="failing"\} 1/)
    expect(metrics).toMatch(/notifier_endpoints_disabled_total\{cause="gone"\} 1/)
    expect(metrics).toMatch(/notifier_endpoints_disabled 2/)
    expect(metrics).toMatch(/notifier_attempts_total\{outcome="http_error"\} \d+/)
  })

  it('never follows a redirect, not even to an address it could reach', async () => {
    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const owner = await createUser(database.pool)
    const elsewhere = createServer()
    let reached = 0
    elsewhere.on('connection', (socket) => {
      reached++
      socket.destroy()
    })
    elsewhere.listen(0, '127.0.0.1')
    await once(elsewhere, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => elsewhere.close(() => resolve())))
    const port = (elsewhere.address() as { port: number }).port
    const redirecting = await createReceiver()
    redirecting.respond = (_request, response) =>
      response.writeHead(302, { location: `http://127.0.0.1:${port}/internal` }).end()
    await createEndpoint(database.pool, owner, redirecting.url)
    await startNotifier(notifierEnv(database, topic.name, { WEBHOOK_RETRY_SCHEDULE: '100ms' }))
    await topic.publish([testAlert(1)])
    await waitFor(async () => (await deliveryStates(database.pool)).failed === 1, {
      what: 'the delivery to fail',
    })
    const { rows } = await database.pool.query(
      'SELECT attempts, last_status, last_error FROM webhook_deliveries',
    )
    expect(rows[0]).toEqual({
      attempts: 2,
      last_status: 302,
      last_error: `HTTP 302: redirect to http://127.0.0.1:${port}/internal not followed`,
    })
    expect(redirecting.requests).toHaveLength(2)
    expect(reached).toBe(0)
  })
})
