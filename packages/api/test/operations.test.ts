import type { FastifyPluginAsync } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { BACKENDS } from '../../../test/support/detections-stores.js'
import type { AlertsFeature } from '../src/alerts-feature.js'
import { HttpError } from '../src/http/problem.js'
import { createTestApp, createUserAndToken, type TestApp, useTestApp } from './helper.js'

describe('health, readiness, metrics, errors', () => {
  const t = useTestApp()

  it('is alive and ready with PostgreSQL and the detections store up and no alerts stream configured', async () => {
    expect((await t.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' })
    const ready = await t.inject({ method: 'GET', url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'up', detections: { backend: 'postgres', status: 'up' }, kafka: 'disabled' },
    })
  })

  it('records request durations by route template and status in Prometheus format', async () => {
    await t.inject({ method: 'GET', url: '/detections?limit=5' })
    await t.inject({ method: 'GET', url: '/no/such/route' })
    const response = await t.inject({ method: 'GET', url: '/metrics' })
    expect(response.headers['content-type']).toMatch(/^text\/plain/)
    expect(response.body).toMatch(
      /http_request_duration_seconds_count\{[^}]*route="\/detections"[^}]*status_code="401"[^}]*\} 1/,
    )
    expect(response.body).toMatch(
      /http_request_duration_seconds_count\{[^}]*route="unmatched"[^}]*status_code="404"/,
    )
    expect(response.body).toContain('process_resident_memory_bytes')
  })

  it('answers unknown routes with a 404 problem carrying the request id', async () => {
    const response = await t.inject({ method: 'GET', url: '/nope?x=1' })
    expect(response.statusCode).toBe(404)
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
    const problem = response.json()
    expect(problem).toMatchObject({
      status: 404,
      title: 'Not Found',
      code: 'NOT_FOUND',
      instance: '/nope',
    })
    expect(problem.type).toMatch(/^urn:intellisite:problem:/)
    expect(problem.requestId).toBe(response.headers['x-request-id'])
    expect(t.logs.text()).toContain(problem.requestId)
  })

  it('answers a known path asked with an undeclared method with 405 and the methods it allows', async () => {
    for (const [method, url, allow] of [
      ['TRACE', '/healthz', 'GET, HEAD'],
      ['DELETE', '/detections?limit=1', 'GET, HEAD'],
      ['PUT', '/users', 'POST'],
      ['PATCH', '/auth/token', 'POST'],
      // Fastify parses a QUERY body before it finds no route: still the method that is wrong.
      ['QUERY', '/stats', 'GET, HEAD'],
    ] as const) {
      const response = await t.inject({ method, url })
      expect(response.statusCode, `${method} ${url}`).toBe(405)
      expect(response.headers.allow).toBe(allow)
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(response.json()).toMatchObject({
        status: 405,
        code: 'METHOD_NOT_ALLOWED',
        title: 'Method Not Allowed',
      })
    }
    // An unknown path stays a 404, whatever the method.
    expect((await t.inject({ method: 'DELETE', url: '/nope' })).statusCode).toBe(404)
  })

  it('keeps a safe caller-supplied request id and replaces an unsafe one', async () => {
    const kept = await t.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'trace-123.abc' } })
    expect(kept.headers['x-request-id']).toBe('trace-123.abc')
    expect(kept.json().requestId).toBe('trace-123.abc')
    const replaced = await t.inject({
      method: 'GET',
      url: '/nope',
      headers: { 'x-request-id': 'bad id\u0007' },
    })
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('never logs a token, even one passed in the query string', async () => {
    const { token } = await createUserAndToken(t)
    await t.inject({ method: 'GET', url: '/stats', headers: { authorization: `Bearer ${token}` } })
    await t.inject({ method: 'GET', url: `/nope?access_token=${token}` })
    expect(t.logs.text()).toContain('access_token=[Redacted]')
    expect(t.logs.text()).not.toContain(token)
  })
})

describe.each(BACKENDS)('failures (%s detections store)', (backend) => {
  let t: TestApp
  afterAll(async () => t?.close())

  it('answers 500 without internals when the detections store is gone, and readiness says which dependency is down', async () => {
    t = await createTestApp({ backend })
    const { headers } = await createUserAndToken(t)
    await t.store.close()
    const response = await t.inject({ method: 'GET', url: '/detections', headers })
    expect(response.statusCode).toBe(500)
    const problem = response.json()
    expect(problem).toMatchObject({ status: 500, code: 'INTERNAL_ERROR' })
    expect(problem.detail).not.toMatch(/mongo|topology|client|pool|postgres/i)
    expect(t.logs.text()).toMatch(/"level":50.*request failed/)
    const ready = await t.inject({ method: 'GET', url: '/readyz' })
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toEqual({
      status: 'unavailable',
      checks: { postgres: 'up', detections: { backend, status: 'down' }, kafka: 'disabled' },
    })
  })
})

describe('CORS', () => {
  const t = useTestApp({ env: { CORS_ORIGIN: 'https://console.example.com' } })

  it('allows the configured origin only', async () => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/detections',
      headers: {
        origin: 'https://console.example.com',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-origin']).toBe('https://console.example.com')
    const other = await t.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { origin: 'https://evil.example' },
    })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
  })
})

describe('alerts feature seam', () => {
  let ready = false
  const plugin: FastifyPluginAsync = async (app) => {
    app.get(
      '/alerts',
      {
        schema: {
          tags: ['alerts'],
          operationId: 'streamAlerts',
          summary: 'probe',
          security: [{ bearerAuth: [] }],
          response: { 200: z.string() },
        },
      },
      async (request, reply) => {
        const token = (request.query as { access_token?: string }).access_token
        if (!token) throw new HttpError('UNAUTHORIZED', 'no token')
        const claims = app.jwt.verify<{ username: string }>(token)
        return reply.type('text/plain').send(`hello ${claims.username}`)
      },
    )
  }
  const alerts: AlertsFeature = {
    plugin,
    ready: () => ready,
  }
  const t = useTestApp({ alerts })

  it('reports the alerts consumer as kafka in /readyz', async () => {
    const down = await t.inject({ method: 'GET', url: '/readyz' })
    expect(down.statusCode).toBe(503)
    expect(down.json().checks.kafka).toBe('down')
    ready = true
    const up = await t.inject({ method: 'GET', url: '/readyz' })
    expect(up.statusCode).toBe(200)
    expect(up.json().checks).toEqual({
      postgres: 'up',
      detections: { backend: 'postgres', status: 'up' },
      kafka: 'up',
    })
  })

  it('gives the plugin app.jwt, the problem+json error handler and a place in the OpenAPI document', async () => {
    const { token, username } = await createUserAndToken(t)
    const ok = await t.app.inject({ method: 'GET', url: `/alerts?access_token=${token}` })
    expect(ok.body).toBe(`hello ${username}`)
    const refused = await t.app.inject({ method: 'GET', url: '/alerts' })
    expect(refused.statusCode).toBe(401)
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(Object.keys(t.app.swagger().paths ?? {})).toContain('/alerts')
  })
})
