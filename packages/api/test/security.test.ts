// Probes an outsider would try against the API, kept as tests so that what holds keeps holding.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestApp, createUserAndToken, useTestApp } from './helper.js'

describe('probes from outside', () => {
  const t = useTestApp()

  it('never echoes a query-string access token in a problem body', async () => {
    const { token } = await createUserAndToken(t)
    const response = await t.inject({ method: 'GET', url: `/detections?limit=abc&access_token=${token}` })
    expect(response.statusCode).toBe(400)
    expect(response.body).not.toContain(token)
    expect(response.json()).toMatchObject({ instance: '/detections', code: 'VALIDATION_FAILED' })
    const unknown = await t.inject({ method: 'GET', url: `/nope?access_token=${token}` })
    expect(unknown.body).not.toContain(token)
  })

  it('refuses a body over the limit with 413 before reading it all', async () => {
    const response = await t.inject({
      method: 'POST',
      url: '/users',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'big', password: 'x'.repeat(3 * 1024 * 1024) }),
    })
    expect(response.statusCode).toBe(413)
    expect(response.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
  })

  it('answers a request line over the header limit with a documented 431 problem', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = t.app.server.address() as { port: number }
    // A long non-ASCII filter: every character is percent-encoded into 6 bytes, 24 KiB in all.
    const since = encodeURIComponent('Ω€'.repeat(2048))
    const response = await fetch(`http://127.0.0.1:${port}/alerts?since=${since}`)
    expect(response.status).toBe(431)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    const body = await response.text()
    expect(JSON.parse(body)).toMatchObject({ status: 431, code: 'HEADERS_TOO_LARGE', instance: '/' })
    expect(response.headers.get('x-request-id')).toBe(JSON.parse(body).requestId)
    // Documented for every operation, with the problem schema.
    const documented = { statusCode: 431, headers: Object.fromEntries(response.headers), body }
    for (const [method, url] of [
      ['GET', '/alerts'],
      ['GET', '/detections'],
      ['POST', '/rules'],
    ] as const) {
      t.spec.assertResponse(method, url, documented as unknown as Parameters<typeof t.spec.assertResponse>[2])
    }
  })

  it('refuses operator objects where strings belong', async () => {
    for (const payload of [
      { username: { $ne: null }, password: 'whatever-password' },
      { username: 'someone', password: { $gt: '' } },
    ]) {
      const signUp = await t.inject({ method: 'POST', url: '/users', payload })
      expect(signUp.statusCode).toBe(400)
      const login = await t.inject({ method: 'POST', url: '/auth/token', payload })
      expect(login.statusCode).toBe(400)
    }
  })
})

describe('the dashboard folder', () => {
  const built = mkdtempSync(join(tmpdir(), 'dashboard-'))
  writeFileSync(join(built, 'index.html'), '<!doctype html>')
  afterAll(() => rmSync(built, { recursive: true, force: true }))
  const t = useTestApp({ env: { DASHBOARD_DIR: built } })

  it('serves nothing outside the dashboard folder, however the path is spelled', async () => {
    for (const url of [
      '/dashboard/../../etc/passwd',
      '/dashboard/..%2f..%2fetc%2fpasswd',
      '/dashboard/%2e%2e/%2e%2e/etc/passwd',
    ]) {
      const response = await t.inject({ method: 'GET', url })
      expect([403, 404], url).toContain(response.statusCode)
      expect(response.body, url).not.toContain('root:')
    }
  })
})

describe('login rate limit behind no proxy', () => {
  it('is not reset by a forged X-Forwarded-For', async () => {
    const t = await createTestApp({ env: { AUTH_RATE_LIMIT_MAX: '3' } })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) {
        const response = await t.inject({
          method: 'POST',
          url: '/auth/token',
          headers: { 'x-forwarded-for': `203.0.113.${i}` },
          payload: { username: 'nobody', password: 'wrong-password' },
        })
        statuses.push(response.statusCode)
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429])
    } finally {
      await t.close()
    }
  })
})
