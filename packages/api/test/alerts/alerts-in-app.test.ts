// GET /alerts inside the real app (buildApp: its JWT plugin, problem+json handler, Swagger,
// health), as main.ts wires it: documented, authenticated with a token from POST /auth/token.
import { randomUUID } from 'node:crypto'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createAlertsFeature } from '../../src/alerts/index.js'
import { createTestApp, createUserAndToken } from '../helper.js'
import {
  alertsConfig,
  createAlertsProducer,
  deleteTopicLater,
  makeAlert,
  privateRule,
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
        paths: Record<
          string,
          { get?: { operationId?: string; tags?: string[]; parameters?: { name: string }[] } }
        >
        components: {
          schemas: { AlertEvent: { anyOf: { properties: { data: { contentSchema: object } } }[] } }
        }
      }>()
      expect(spec.paths['/alerts']?.get).toMatchObject({ operationId: 'streamAlerts', tags: ['alerts'] })
      expect(spec.paths['/alerts']?.get?.parameters?.map((p) => p.name)).toContain('rule')
      // Every alert the stream sends must match the documented alert (rules included, no owner).
      const ajv = new Ajv2020({ strict: false, allErrors: true })
      addFormats.default(ajv)
      const documented = ajv.compile(
        spec.components.schemas.AlertEvent.anyOf[0]!.properties.data.contentSchema,
      )

      // Checked against the documented response schemas by the helper's inject.
      const missing = await t.inject({ method: 'GET', url: '/alerts' })
      expect(missing.statusCode).toBe(401)
      expect(missing.headers['content-type']).toContain('application/problem+json')
      const { token, user } = await createUserAndToken(t)
      const malformed = await t.inject({
        method: 'GET',
        url: '/alerts',
        headers: { authorization: `Bearer ${token}`, 'last-event-id': 'nope!' },
      })
      expect(malformed.statusCode).toBe(400)
      expect(malformed.json<{ code: string }>().code).toBe('INVALID_LAST_EVENT_ID')
      const tooMany = await t.inject({
        method: 'GET',
        url: `/alerts?rule=${Array.from({ length: 51 }, (_, i) => `r${i}`).join(',')}`,
        headers: { authorization: `Bearer ${token}` },
      })
      expect(tooMany.statusCode).toBe(400)
      expect(tooMany.json<{ errors?: { path?: string }[] }>().errors?.[0]?.path).toContain('rule')
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
      const mine = privateRule(user.id, 'my watch list')
      const theirs = privateRule(randomUUID(), 'their watch list')
      const ofMine = makeAlert(2, { rules: [theirs, mine], reason: 'matches rule their watch list' })
      const legacy = (({ rules: _rules, ...old }) => old)(makeAlert(3))
      await producer.send([alert, makeAlert(4, { rules: [theirs] }), ofMine, legacy])
      const got = await received.waitFor(3)
      expect(got.map((x) => x.id).sort()).toEqual([alert.id, ofMine.id, legacy.id].sort())
      expect(got.find((x) => x.id === alert.id)).toEqual(alert)
      const { owner: _owner, ...shown } = mine
      expect(got.find((x) => x.id === ofMine.id)).toEqual({
        ...ofMine,
        reason: 'matches rule my watch list',
        rules: [shown],
      })
      expect(got.find((x) => x.id === legacy.id)).toEqual({ ...legacy, rules: alert.rules })
      for (const event of received.events) expect(documented(JSON.parse(event.data)), event.data).toBe(true)
      expect(documented({ ...ofMine })).toBe(false)
      received.close()
    } finally {
      await t.close()
    }
    expect(feature.ready()).toBe(false)
  })
})
