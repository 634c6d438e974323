import SwaggerParser from '@apidevtools/swagger-parser'
import { Kafka, logLevel } from 'kafkajs'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { createAlertsFeature } from '../src/alerts/index.js'
import { createTestApp, type TestApp, testConfig, useTestApp } from './helper.js'

type Operation = {
  tags?: string[]
  operationId?: string
  summary?: string
  security?: Record<string, string[]>[]
  responses?: Record<
    string,
    { content?: Record<string, { schema?: unknown; example?: unknown; examples?: unknown }> }
  >
  requestBody?: { content?: Record<string, unknown> }
}

describe('OpenAPI document', () => {
  const t = useTestApp()

  it('is served at /docs/json and validates as OpenAPI 3', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/json' })
    expect(response.statusCode).toBe(200)
    const document = response.json()
    expect(document.openapi).toMatch(/^3\./)
    await expect(SwaggerParser.validate(structuredClone(document))).resolves.toBeDefined()
  })

  it('serves Swagger UI at /docs', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/' })
    expect(response.statusCode).toBe(200)
    expect(response.body).toContain('swagger-ui')
  })

  it('documents every route with tags, operationId, summary and per-status response schemas', () => {
    const paths = t.app.swagger().paths as Record<string, Record<string, Operation>>
    expect(Object.keys(paths).sort()).toEqual(
      expect.arrayContaining([
        '/auth/token',
        '/detections',
        '/healthz',
        '/metrics',
        '/readyz',
        '/stats',
        '/users',
      ]),
    )
    expect(Object.keys(paths).some((path) => path.startsWith('/docs'))).toBe(false)
    const operationIds = new Set<string>()
    for (const [path, item] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${path}`
        expect(operation.tags?.length, where).toBeGreaterThan(0)
        expect(operation.summary, where).toBeTruthy()
        expect(operation.operationId, where).toMatch(/^[a-z][A-Za-z]+$/)
        expect(operationIds.has(operation.operationId!), where).toBe(false)
        operationIds.add(operation.operationId!)
        const responses = Object.entries(operation.responses ?? {})
        expect(responses.length, where).toBeGreaterThan(0)
        for (const [status, response] of responses) {
          const contents = Object.entries(response.content ?? {})
          // 204 No Content has no body to describe.
          if (status !== '204') expect(contents.length, `${where} ${status}`).toBeGreaterThan(0)
          for (const [type, content] of contents) {
            expect(content.schema, `${where} ${status} ${type}`).toBeDefined()
            // Errors are problem+json; the readiness report is the one non-2xx body that is not an error.
            if (Number(status) >= 400 && path !== '/readyz') {
              expect(type, `${where} ${status}`).toBe('application/problem+json')
            }
          }
        }
        if (operation.security) expect(Object.keys(operation.responses ?? {}), where).toContain('401')
      }
    }
  })

  it('lets Swagger UI authorize with a pasted bearer token or the OAuth2 password flow', () => {
    const document = t.app.swagger() as {
      components: {
        securitySchemes: Record<
          string,
          { type: string; scheme?: string; flows?: { password?: { tokenUrl: string } } }
        >
      }
      paths: Record<string, Record<string, Operation>>
    }
    const schemes = Object.entries(document.components.securitySchemes)
    const bearer = schemes.find(([, s]) => s.type === 'http' && s.scheme === 'bearer')
    const oauth = schemes.find(([, s]) => s.type === 'oauth2')
    expect(bearer).toBeDefined()
    expect(oauth?.[1].flows?.password?.tokenUrl).toBe('/auth/token')
    const security = document.paths['/detections']?.get?.security ?? []
    expect(security).toEqual(expect.arrayContaining([{ [bearer![0]]: [] }, { [oauth![0]]: [] }]))
    const tokenBody = document.paths['/auth/token']?.post?.requestBody?.content ?? {}
    expect(Object.keys(tokenBody)).toEqual(
      expect.arrayContaining(['application/json', 'application/x-www-form-urlencoded']),
    )
  })

  it('has examples for request bodies and successful responses', () => {
    const document = JSON.stringify(t.app.swagger())
    for (const example of [
      '"correct horse battery staple"',
      '"Land Cruiser"',
      '"VALIDATION_FAILED"',
      '"bearer"',
    ]) {
      expect(document).toContain(example)
    }
  })

  it('the response checker rejects a body that does not match', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/healthz' })
    const forged = {
      ...response,
      statusCode: 200,
      body: JSON.stringify({ status: 'sick' }),
    } as typeof response
    expect(() => t.spec.assertResponse('GET', '/healthz', forged)).toThrow(/does not match/)
    const undocumented = { ...response, statusCode: 418 } as typeof response
    expect(() => t.spec.assertResponse('GET', '/healthz', undocumented)).toThrow(/not documented/)
  })
})

describe('OpenAPI document of the full app (with GET /alerts)', () => {
  let t: TestApp | undefined
  afterAll(async () => t?.close())

  it('still validates as OpenAPI 3 and documents /alerts as secured', async () => {
    const config = testConfig()
    const kafka = new Kafka({
      clientId: 'openapi-test',
      brokers: config.KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
    })
    // Built but never started: only its routes matter here.
    const alerts = createAlertsFeature({ kafka, config, logger: pino({ level: 'silent' }) })
    t = await createTestApp({ alerts })
    const document = t.app.swagger() as { paths: Record<string, Record<string, Operation>> }
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined()
    const operation = document.paths['/alerts']?.get
    expect(operation?.operationId).toBeTruthy()
    expect(operation?.security?.length).toBeGreaterThan(0)
    // Clients generated from the document must see a stream, not JSON.
    expect(Object.keys(operation?.responses?.['200']?.content ?? {})).toEqual(['text/event-stream'])
    expect(Object.keys(operation?.responses?.['401']?.content ?? {})).toEqual(['application/problem+json'])
  })
})
