import { STATUS_CODES } from 'node:http'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { createJsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { ERROR_STATUSES, type ProblemCode } from '../http/error-statuses.js'
import { problemType } from '../http/problem.js'

export const BEARER = 'bearerAuth'
export const OAUTH2 = 'oauth2Password'
/** Either scheme authorises a protected route: Swagger UI logs in with the password flow or takes a pasted token. */
export const SECURED: Record<string, string[]>[] = [{ [BEARER]: [] }, { [OAUTH2]: [] }]

type Operation = {
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>
}

/**
 * Errors are served as `application/problem+json` and the alerts stream as `text/event-stream`;
 * the zod transform can only describe JSON, so those responses are re-labelled here by their
 * registered schema, and every response gets a real description.
 */
const MEDIA_TYPES: Record<string, string> = {
  Problem: 'application/problem+json',
  RowsProblem: 'application/problem+json',
  WatchlistCsv: 'text/csv',
  AlertEvent: 'text/event-stream',
}

/** The code a problem of each status usually carries, for the example shown beside it. */
const EXAMPLE_CODES: Record<number, [code: ProblemCode, detail: string]> = {
  400: [
    'VALIDATION_FAILED',
    'The request is invalid: querystring/limit: Too big: expected number to be <=1000',
  ],
  401: ['UNAUTHORIZED', 'The access token is invalid.'],
  403: ['FORBIDDEN', 'Only an admin may do this.'],
  404: ['NOT_FOUND', 'Not found.'],
  409: ['CONFLICT', 'The request conflicts with the current state.'],
  412: ['PRECONDITION_FAILED', 'If-Match does not match the current version.'],
  413: ['PAYLOAD_TOO_LARGE', 'Request body is too large.'],
  415: ['UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: text/plain'],
  429: ['RATE_LIMITED', 'Too many requests: retry in 60 s.'],
  500: ['INTERNAL_ERROR', 'An unexpected error occurred. Quote the request id when reporting it.'],
  503: ['SERVICE_UNAVAILABLE', 'A dependency is unavailable; retry later.'],
}

const problemCodes = Object.keys(ERROR_STATUSES) as (keyof typeof ERROR_STATUSES)[]

/** A problem example whose status is the response's own (the schema's single example is a 400). */
function problemExample(status: number) {
  const [code, detail] = EXAMPLE_CODES[status] ?? [
    problemCodes.find((c) => ERROR_STATUSES[c] === status) ?? 'INTERNAL_ERROR',
    STATUS_CODES[status] ?? 'Error',
  ]
  return {
    type: problemType(code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: '/detections',
    code,
    requestId: '5f0c1a8e-2b1d-4d7e-9a53-0c7f0e6b9a11',
    ...(status === 400 && {
      errors: [{ in: 'querystring', path: '/limit', message: 'Too big: expected number to be <=1000' }],
    }),
  }
}

/**
 * Node refuses a request line and headers over its limit (16 KiB) with a 431 before any route
 * runs, so every operation can answer it (a long query string is enough); see http/client-error.ts.
 */
function documentHeaderLimit(document: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const item of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(item)) {
      operation.responses ??= {}
      operation.responses['431'] ??= {
        description: 'The request line and headers exceed 16 KiB',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } },
      }
    }
  }
}

function relabelResponses(document: { paths?: Record<string, Record<string, Operation>> }): void {
  for (const item of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(item)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (!response.description || response.description === 'Default Response') {
          response.description = STATUS_CODES[Number(status)] ?? 'Response'
        }
        const json = response.content?.['application/json'] as { schema?: { $ref?: string } } | undefined
        const mediaType = MEDIA_TYPES[json?.schema?.$ref?.split('/').at(-1) ?? '']
        if (json && mediaType && response.content) {
          delete response.content['application/json']
          response.content[mediaType] =
            mediaType === MEDIA_TYPES.Problem ? { ...json, example: problemExample(Number(status)) } : json
        }
      }
    }
  }
}

/**
 * The zod transform emits every registered schema twice (input and output variants) with `$schema`
 * and fragment-only `$id`s, which are not valid inside an OpenAPI document. Keep what is referenced.
 */
function tidyComponents(document: {
  components?: { schemas?: Record<string, Record<string, unknown>> }
}): void {
  const schemas = document.components?.schemas
  if (!schemas) return
  for (const schema of Object.values(schemas)) {
    delete schema.$schema
    delete schema.$id
  }
  const text = JSON.stringify(document)
  for (const name of Object.keys(schemas)) {
    if (!text.includes(`"#/components/schemas/${name}"`)) delete schemas[name]
  }
}

const zodTransform = createJsonSchemaTransform({ skipList: [] })

export const swaggerPlugin = fp(
  async (app) => {
    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Intellisite detections API',
          version: '1.0.0',
          description:
            'Vehicle detections from road cameras: page through them, count them, watch suspicious vehicles live.\n\n' +
            'To try a protected route: `POST /users` to create an account, then **Authorize** with the password flow ' +
            '(username and password; client id and secret are not used) or paste a token from `POST /auth/token`.\n\n' +
            'Errors are `application/problem+json` (RFC 9457) with a stable `code` and the `requestId`.',
        },
        tags: [
          { name: 'users', description: 'Accounts' },
          { name: 'auth', description: 'Access tokens (JWT, HS256)' },
          { name: 'detections', description: 'Stored vehicle detections and their counts' },
          { name: 'alerts', description: 'Live suspicious-vehicle alerts (Server-Sent Events)' },
          { name: 'rules', description: 'Alert rules and watch lists: what raises an alert, and for whom' },
          {
            name: 'webhooks',
            description: 'Alerts POSTed to your endpoints, signed per Standard Webhooks, retried for hours',
          },
          { name: 'operations', description: 'Health, readiness and metrics' },
        ],
        components: {
          securitySchemes: {
            [BEARER]: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description: 'Token from POST /auth/token',
            },
            [OAUTH2]: {
              type: 'oauth2',
              description: 'OAuth2 resource-owner password flow against POST /auth/token',
              flows: { password: { tokenUrl: '/auth/token', scopes: {} } },
            },
          },
        },
      },
      transform: (input) => {
        try {
          return zodTransform(input)
        } catch (err) {
          // A route declared with plain JSON schemas is documented as declared rather than breaking /docs.
          if ((err as { code?: string }).code !== 'FST_ERR_INVALID_SCHEMA') throw err
          return { schema: input.schema, url: input.url }
        }
      },
      transformObject: (input) => {
        const document = jsonSchemaTransformObject(input) as ReturnType<typeof jsonSchemaTransformObject> & {
          paths?: Record<string, Record<string, Operation>>
        }
        documentHeaderLimit(document)
        relabelResponses(document)
        tidyComponents(document as Parameters<typeof tidyComponents>[0])
        return document
      },
    })
    await app.register(fastifySwaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true, displayRequestDuration: true },
    })
  },
  { name: 'swagger' },
)
