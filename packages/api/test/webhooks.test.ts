import { randomUUID } from 'node:crypto'
import type { LookupAddress } from 'node:dns'
import { createServer } from 'node:net'
import { systemResolver } from '@intellisite/webhooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUserAndToken, useTestApp } from './helper.js'

/** DNS for the test: fixed answers for *.test names, the system's for the rest (localhost). */
async function resolveHost(hostname: string): Promise<LookupAddress[]> {
  const answers: Record<string, string[]> = {
    'public.test': ['93.184.216.34'],
    'loopback.test': ['127.0.0.1'],
    'mixed.test': ['93.184.216.34', '::1'],
    'metadata.test': ['169.254.169.254'],
  }
  const found = answers[hostname]
  if (found) return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  if (hostname.endsWith('.test')) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
  return systemResolver(hostname)
}

describe('/webhooks', () => {
  const t = useTestApp({ resolveHost })
  let alice: Awaited<ReturnType<typeof createUserAndToken>>
  let bob: Awaited<ReturnType<typeof createUserAndToken>>
  // Registration only resolves names: nothing may connect anywhere. A listener on loopback proves
  // that no check ever dials (every URL below that could reach loopback names its port).
  const listener = createServer()
  let connections = 0
  let port = 0
  beforeAll(async () => {
    alice = await createUserAndToken(t)
    bob = await createUserAndToken(t)
    listener.on('connection', (socket) => {
      connections++
      socket.destroy()
    })
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    port = (listener.address() as { port: number }).port
  })
  afterAll(() => new Promise<void>((resolve) => listener.close(() => resolve())))

  const create = (headers: Record<string, string>, payload: unknown) =>
    t.inject({ method: 'POST', url: '/webhooks', headers, payload: payload as object })

  it('registers an endpoint and shows its secret once', async () => {
    const response = await create(alice.headers, {
      url: 'https://public.test/hooks',
      description: 'ops',
      rules: ['00000000-0000-4000-8000-000000000001'],
    })
    expect(response.statusCode).toBe(201)
    const created = response.json()
    expect(created).toMatchObject({
      url: 'https://public.test/hooks',
      description: 'ops',
      rules: ['00000000-0000-4000-8000-000000000001'],
      enabled: true,
      disabledReason: null,
    })
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/)
    expect(Buffer.from(created.secret.slice(6), 'base64')).toHaveLength(32)

    const fetched = await t.inject({ method: 'GET', url: `/webhooks/${created.id}`, headers: alice.headers })
    expect(fetched.statusCode).toBe(200)
    expect(fetched.json()).not.toHaveProperty('secret')
    expect(fetched.body).not.toContain(created.secret.slice(6))
    const listed = await t.inject({ method: 'GET', url: '/webhooks?limit=10', headers: alice.headers })
    expect(listed.json()).toMatchObject({ total: 1, skip: 0, limit: 10 })
    expect(listed.body).not.toContain(created.secret.slice(6))
    // Stored as issued, since it must sign.
    const { rows } = await t.pool.query('SELECT secret FROM webhooks WHERE id = $1', [created.id])
    expect(rows[0].secret).toBe(created.secret)
  })

  it.each([
    [`http://127.0.0.1:${0}/`, /plain http/],
    ['https://127.0.0.1/', /127\.0\.0\.1 is a loopback address/],
    ['https://[::1]/', /::1 is a loopback address/],
    ['https://[::ffff:127.0.0.1]/', /IPv4-mapped IPv6/],
    ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
    ['https://10.0.0.1/', /10\.0\.0\.1 is a private address/],
    ['https://2130706433/', /127\.0\.0\.1 is a loopback address/],
    ['https://localhost/', /loopback address \(localhost resolves to it\)/],
    ['https://loopback.test/', /127\.0\.0\.1 is a loopback address \(loopback\.test resolves to it\)/],
    ['https://mixed.test/', /::1 is a loopback address \(mixed\.test resolves to it\)/],
    ['https://metadata.test/', /169\.254\.169\.254 is a link-local address/],
    ['https://nowhere.test/', /does not resolve/],
    ['https://user:pw@public.test/', /credentials/],
    ['ftp://public.test/', /ftp:/],
  ])('refuses %s with 400 naming the reason', async (url, reason) => {
    const target = url.replace(':0/', `:${port}/`).replace('127.0.0.1/', `127.0.0.1:${port}/`)
    const response = await create(alice.headers, { url: target })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({ code: 'WEBHOOK_URL_REFUSED' })
    expect(response.json().detail).toMatch(reason)
    expect(connections).toBe(0)
  })

  it('checks a changed URL like a new one, and re-enabling clears the disabled reason', async () => {
    const { id } = (await create(alice.headers, { url: 'https://public.test/a' })).json()
    const refused = await t.inject({
      method: 'PATCH',
      url: `/webhooks/${id}`,
      headers: alice.headers,
      payload: { url: 'https://10.1.2.3/' },
    })
    expect(refused.statusCode).toBe(400)
    await t.pool.query(
      "UPDATE webhooks SET enabled = false, disabled_reason = 'failing', consecutive_failures = 20, failing_since = now() WHERE id = $1",
      [id],
    )
    const test = await t.inject({ method: 'POST', url: `/webhooks/${id}/test`, headers: alice.headers })
    expect(test.statusCode).toBe(409)
    expect(test.json()).toMatchObject({
      code: 'WEBHOOK_DISABLED',
      detail: expect.stringContaining('failing'),
    })
    const enabled = await t.inject({
      method: 'PATCH',
      url: `/webhooks/${id}`,
      headers: alice.headers,
      payload: { enabled: true, description: 'back', rules: null },
    })
    expect(enabled.statusCode).toBe(200)
    expect(enabled.json()).toMatchObject({
      enabled: true,
      disabledReason: null,
      consecutiveFailures: 0,
      failingSince: null,
      description: 'back',
      rules: null,
    })
    const paused = await t.inject({
      method: 'PATCH',
      url: `/webhooks/${id}`,
      headers: alice.headers,
      payload: { enabled: false },
    })
    expect(paused.json()).toMatchObject({ enabled: false, disabledReason: 'disabled by its owner' })
  })

  it('rotates the secret with an overlap, queues pings and retries deliveries', async () => {
    const { id, secret } = (await create(alice.headers, { url: 'https://public.test/b' })).json()
    const rotated = await t.inject({
      method: 'POST',
      url: `/webhooks/${id}/rotate-secret`,
      headers: alice.headers,
    })
    expect(rotated.statusCode).toBe(200)
    const { secret: next, previousSecretExpiresAt } = rotated.json()
    expect(next).toMatch(/^whsec_/)
    expect(next).not.toBe(secret)
    const overlapHours = (new Date(previousSecretExpiresAt).getTime() - Date.now()) / 3_600_000
    expect(overlapHours).toBeGreaterThan(23.9)
    expect(overlapHours).toBeLessThanOrEqual(24)
    const { rows } = await t.pool.query('SELECT secret, previous_secret FROM webhooks WHERE id = $1', [id])
    expect(rows[0]).toEqual({ secret: next, previous_secret: secret })

    const ping = await t.inject({ method: 'POST', url: `/webhooks/${id}/test`, headers: alice.headers })
    expect(ping.statusCode).toBe(202)
    const { deliveryId } = ping.json()
    const log = await t.inject({ method: 'GET', url: `/webhooks/${id}/deliveries`, headers: alice.headers })
    expect(log.json()).toMatchObject({
      total: 1,
      items: [{ id: deliveryId, kind: 'ping', state: 'pending', attempts: 0, lastStatus: null }],
    })
    expect(log.json().items[0].alertId).toMatch(/^ping_/)
    const detail = await t.inject({
      method: 'GET',
      url: `/webhooks/${id}/deliveries/${deliveryId}`,
      headers: alice.headers,
    })
    expect(JSON.parse(detail.json().body)).toMatchObject({ type: 'ping', data: { webhookId: id } })
    expect(detail.json().attemptLog).toEqual([])

    await t.pool.query("UPDATE webhook_deliveries SET state = 'failed', attempts = 7 WHERE id = $1", [
      deliveryId,
    ])
    const retried = await t.inject({
      method: 'POST',
      url: `/webhooks/${id}/deliveries/${deliveryId}/retry`,
      headers: alice.headers,
    })
    expect(retried.statusCode).toBe(202)
    const failedOnly = await t.inject({
      method: 'GET',
      url: `/webhooks/${id}/deliveries?state=failed`,
      headers: alice.headers,
    })
    expect(failedOnly.json().total).toBe(0)
    const unknown = await t.inject({
      method: 'POST',
      url: `/webhooks/${id}/deliveries/${randomUUID()}/retry`,
      headers: alice.headers,
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().code).toBe('DELIVERY_NOT_FOUND')
  })

  it("answers 404 WEBHOOK_NOT_FOUND on every route for another user's webhook, as for an unknown id", async () => {
    const { id } = (await create(alice.headers, { url: 'https://public.test/c' })).json()
    const ping = await t.inject({ method: 'POST', url: `/webhooks/${id}/test`, headers: alice.headers })
    const { deliveryId } = ping.json()
    for (const webhookId of [id, randomUUID()]) {
      const routes: [string, string, object?][] = [
        ['GET', `/webhooks/${webhookId}`],
        ['PATCH', `/webhooks/${webhookId}`, { description: 'mine now' }],
        ['PATCH', `/webhooks/${webhookId}`, { url: 'https://10.0.0.1/' }],
        ['DELETE', `/webhooks/${webhookId}`],
        ['POST', `/webhooks/${webhookId}/rotate-secret`],
        ['POST', `/webhooks/${webhookId}/test`],
        ['GET', `/webhooks/${webhookId}/deliveries`],
        ['GET', `/webhooks/${webhookId}/deliveries/${deliveryId}`],
        ['POST', `/webhooks/${webhookId}/deliveries/${deliveryId}/retry`],
      ]
      for (const [method, url, payload] of routes) {
        const response = await t.inject({
          method: method as 'GET',
          url,
          headers: bob.headers,
          ...(payload && { payload }),
        })
        expect(response.statusCode, `${method} ${url}`).toBe(404)
        expect(response.json().code, `${method} ${url}`).toBe('WEBHOOK_NOT_FOUND')
      }
    }
    const listed = await t.inject({ method: 'GET', url: '/webhooks', headers: bob.headers })
    expect(listed.json()).toMatchObject({ total: 0, items: [] })
    // Nothing of Alice's changed.
    const still = await t.inject({ method: 'GET', url: `/webhooks/${id}`, headers: alice.headers })
    expect(still.json()).toMatchObject({ description: '', url: 'https://public.test/c' })
    const deleted = await t.inject({ method: 'DELETE', url: `/webhooks/${id}`, headers: alice.headers })
    expect(deleted.statusCode).toBe(204)
    const gone = await t.inject({ method: 'GET', url: `/webhooks/${id}`, headers: alice.headers })
    expect(gone.statusCode).toBe(404)
  })

  it('requires a token', async () => {
    const response = await t.inject({ method: 'GET', url: '/webhooks' })
    expect(response.statusCode).toBe(401)
  })
})
