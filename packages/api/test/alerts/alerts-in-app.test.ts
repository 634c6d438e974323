// GET /alerts inside the real app (buildApp: its JWT plugin, problem+json handler, Swagger,
// health), as main.ts wires it: documented, authenticated with a token from POST /auth/token.
import { randomUUID } from 'node:crypto'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createAlertsFeature } from '../../src/alerts/index.js'
import { createTestApp, createUserAndToken } from '../helper.js'
import {
  alertsConfig,
  createAlertsProducer,
  deleteTopicLater,
  makeAlert,
  subscribe,
  testKafka,
} from './helpers.js'

describe('GET /alerts in the real app', () => {
  it('is documented, answers problem+json before the stream, and streams with a login token', async () => {
    const topic = `alerts-test-${randomUUID()}`
    await deleteTopicLater(topic)
    const feature = createAlertsFeature({
      kafka: testKafka(),
      config: alertsConfig(topic),
      logger: pino({ level: 'silent' }),
    })
    await feature.start()
    const t = await createTestApp({ alerts: feature })
    try {
      const spec = (await t.inject({ method: 'GET', url: '/docs/json' })).json<{
        paths: Record<string, { get?: { operationId?: string; tags?: string[] } }>
      }>()
      expect(spec.paths['/alerts']?.get).toMatchObject({ operationId: 'streamAlerts', tags: ['alerts'] })

      // Checked against the documented response schemas by the helper's inject.
      const missing = await t.inject({ method: 'GET', url: '/alerts' })
      expect(missing.statusCode).toBe(401)
      expect(missing.headers['content-type']).toContain('application/problem+json')
      const { token } = await createUserAndToken(t)
      const malformed = await t.inject({
        method: 'GET',
        url: '/alerts',
        headers: { authorization: `Bearer ${token}`, 'last-event-id': 'nope!' },
      })
      expect(malformed.statusCode).toBe(400)
      expect(malformed.json<{ code: string }>().code).toBe('INVALID_LAST_EVENT_ID')
      expect((await t.inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({
        checks: { kafka: 'up' },
      })

      await t.app.listen({ host: '127.0.0.1', port: 0 })
      const address = t.app.server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      const received = subscribe(`http://127.0.0.1:${port}/alerts?access_token=${token}`, token)
      await new Promise<void>((resolve) => received.source.addEventListener('open', () => resolve()))
      const producer = await createAlertsProducer(topic)
      const alert = makeAlert(1)
      await producer.send([alert])
      expect(await received.waitFor(1)).toEqual([alert])
      received.close()
    } finally {
      await t.close()
    }
    expect(feature.ready()).toBe(false)
  })
})
