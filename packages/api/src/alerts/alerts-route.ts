import type { IncomingMessage, ServerResponse } from 'node:http'
import { alertRuleSchema, alertSchema } from '@intellisite/detections-store'
import type { FastifyPluginAsync } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { HttpError, problemSchema as problem } from '../http/problem.js'
import { bearerToken } from '../plugins/auth.js'
import { SECURED } from '../plugins/swagger.js'
import {
  createAlertSelection,
  createStreamReader,
  MAX_RULE_FILTER,
  MAX_RULE_ID_LENGTH,
  ruleIds,
} from './alert-reader.js'
import type { StreamRequest } from './alerts-stream.js'
import { streamStart } from './catch-up.js'
import { MAX_TOKEN_CHARS, RESUME_TOKEN_PATTERN } from './resume-token.js'
import { parseSince } from './since.js'
import type { SseBroadcaster } from './sse-broadcaster.js'

/** A comma-separated list with at least one non-blank item: `make=` alone is rejected, as on /detections. */
const filterList = (what: string) =>
  z
    .string()
    .max(500)
    .regex(/[^\s,]/, `must name at least one ${what}`)
    .optional()

const querystring = z.object({
  access_token: z
    .string()
    .optional()
    .describe('JWT, for clients that cannot send an Authorization header (browser EventSource)'),
  lastEventId: z
    .string()
    .min(1)
    .max(MAX_TOKEN_CHARS)
    .regex(new RegExp(RESUME_TOKEN_PATTERN), 'must be an event id from this stream')
    .optional()
    .describe('Resume token (an event `id`) for clients that cannot send the Last-Event-ID header'),
  since: z
    .union([z.string().regex(/^\d{1,15}$/), z.iso.datetime({ offset: true })], {
      error: 'must be epoch milliseconds or an ISO-8601 date-time',
    })
    .refine((value) => parseSince(value) !== null, 'must be epoch milliseconds or an ISO-8601 date-time')
    .optional()
    .describe(
      'Start from alerts published at or after this time: epoch milliseconds or an ISO-8601 date-time with a zone ' +
        '(ignored when resuming). A time before the oldest alert kept, 1970 and earlier included, starts from the oldest alert kept',
    ),
  make: filterList('make').describe('Comma-separated makes, case-insensitive; blank items are ignored'),
  category: filterList('category').describe(
    'Comma-separated categories; matches any token of the alert category, case-insensitive; blank items are ignored',
  ),
  rule: z
    .union([z.string(), z.array(z.string())])
    .refine((value) => {
      const ids = ruleIds(value)
      return (
        ids.length > 0 && ids.length <= MAX_RULE_FILTER && ids.every((id) => id.length <= MAX_RULE_ID_LENGTH)
      )
    }, `must name 1 to ${MAX_RULE_FILTER} rule ids of at most ${MAX_RULE_ID_LENGTH} characters`)
    .optional()
    .describe(
      `Only alerts that matched one of these rules: rule ids, repeated (\`rule=a&rule=b\`) or comma-separated, ` +
        `at most ${MAX_RULE_FILTER}. An id of a rule you cannot see, or of no rule, matches nothing`,
    ),
})

/**
 * An alert as a reader gets it: every rule it matched that the reader may see (shared rules and
 * their own private ones), never who owns them; alerts raised before rules existed list the
 * built-in rule.
 */
const visibleAlertSchema = alertSchema.extend({
  reason: alertSchema.shape.reason.describe(
    "Why it alerted: the built-in rule's `category matches SUV`, or `matches rule <name>` naming one of `rules`",
  ),
  rules: z
    .array(alertRuleSchema.omit({ owner: true }))
    .min(1)
    .describe(
      'The rules the detection matched that you may see (shared ones and your own), the built-in ' +
        'SUSPICIOUS_VEHICLE rule first when it matched',
    ),
})

const alertJsonSchema = z.toJSONSchema(visibleAlertSchema, { target: 'draft-2020-12' })
delete (alertJsonSchema as { $schema?: string }).$schema

/**
 * One event of the stream, as an SSE parser hands it over (`event`, `data`, `id`, `retry`), so
 * that tools can check each event against the document. `retry:` frames and `:` heartbeats carry
 * no data and are not events.
 */
const alertEventSchema = z
  .union([
    z.object({
      event: z.literal('alert'),
      id: z.string().describe('Resume token: the Kafka position after this alert'),
      data: z
        .string()
        .meta({ contentMediaType: 'application/json', contentSchema: alertJsonSchema })
        .describe('One Alert as JSON'),
    }),
    z.object({
      event: z.literal('reset'),
      id: z.string().describe('Resume token of the restart point'),
      data: z
        .string()
        .meta({ contentMediaType: 'application/json' })
        .describe('`{"reason":"position-not-retained","restartFrom":<resume token>}`'),
    }),
    z.object({
      event: z.literal('token-expired'),
      id: z.string().optional(),
      data: z.string().describe('`{}`; the stream ends after it'),
    }),
  ])
  .meta({
    id: 'AlertEvent',
    description:
      'One event of the `text/event-stream`: `event: alert` (`id:` resume token, `data:` one Alert as JSON), ' +
      '`event: reset` or `event: token-expired`. The stream also carries a `retry:` line and `:` heartbeat comments.',
    example: {
      event: 'alert',
      id: 'AQOwCRk4',
      data:
        '{"id":"q0P3b0kM5iQ2yB3Q5zN2Xg","detectedAt":"2024-05-01T12:00:00.000Z","year":2011,"make":"Toyota",' +
        '"model":"Land Cruiser","category":"SUV","reason":"category matches SUV","rules":[{"id":' +
        '"00000000-0000-4000-8000-000000000001","version":1,"name":"SUSPICIOUS_VEHICLE","scope":"shared"}]}',
    },
  })

export interface AlertsRouteDeps {
  broadcaster: Pick<SseBroadcaster, 'acquire'>
  accepting(): boolean
  /** Takes over the hijacked connection (its head not yet written) and streams on it. */
  open(request: IncomingMessage, response: ServerResponse, stream: StreamRequest): void
}

function forwardedHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (lower === 'content-type' || lower === 'content-length' || lower === 'transfer-encoding') continue
    if (lower === 'connection' || lower === 'cache-control') continue
    if (typeof value === 'string' || typeof value === 'number')
      out[name] = String(value).replace(/[\r\n]/g, '')
  }
  return out
}

export function createAlertsRoute(deps: AlertsRouteDeps): FastifyPluginAsync {
  return async (app) => {
    app.withTypeProvider<ZodTypeProvider>().get(
      '/alerts',
      {
        schema: {
          tags: ['alerts'],
          operationId: 'streamAlerts',
          summary: 'Live suspicious-vehicle alerts (Server-Sent Events), resumable',
          description:
            '`text/event-stream`. Each alert is `event: alert` with `data:` the alert JSON and `id:` a ' +
            'resume token (the Kafka position after it). You get the alerts of shared rules and of your own ' +
            'private rules; each lists the rules it matched that you may see (`rules`). `make`, `category` ' +
            'and `rule` narrow the stream. Reconnect with `Last-Event-ID` (or `lastEventId`) and the same ' +
            'filters to receive every later alert exactly once. `event: reset` means the position is no longer ' +
            'retained; the stream restarts from the oldest retained alert (its `id`). `event: token-expired` ' +
            'precedes the end of the stream when the JWT expires: get a new token before reconnecting. ' +
            'Comment lines are heartbeats.',
          security: SECURED,
          querystring,
          response: {
            // A registered id, so the app's OpenAPI post-processing can label it text/event-stream;
            // before OpenAPI 3.2 (itemSchema) the schema of an event stream describes one event.
            200: alertEventSchema,
            400: problem.describe(
              'Malformed `since` or filter, or a Last-Event-ID / `lastEventId` that is not a resume token of this ' +
                'stream (the token is opaque: only ids this stream sent are accepted)',
            ),
            401: problem.describe('Missing, invalid or expired token'),
            429: problem.describe('Too many open streams for this user'),
            503: problem.describe('The alerts consumer is not running (starting or shutting down)'),
          },
        },
      },
      async (request, reply) => {
        // EventSource cannot send headers: a browser passes the token as `access_token`.
        const token = (bearerToken(request.headers.authorization) || undefined) ?? request.query.access_token
        const claims = app.verifyAccessToken(token || undefined, { queryParameter: 'access_token' })
        const header = request.headers['last-event-id']
        const lastEventId =
          (typeof header === 'string' && header !== '' ? header : undefined) ?? request.query.lastEventId
        // The header wins over the query: on reconnect EventSource keeps the URL but sends a newer id.
        const start = streamStart(lastEventId, request.query.since)
        const reader = createStreamReader(claims.sub, createAlertSelection(request.query))
        if (!deps.accepting()) {
          throw new HttpError('ALERTS_UNAVAILABLE', 'The alerts stream is not available right now')
        }
        if (!deps.broadcaster.acquire(claims.sub)) {
          throw new HttpError('TOO_MANY_STREAMS', 'Too many open alert streams for this user')
        }
        reply.hijack()
        const headers = forwardedHeaders(reply.getHeaders())
        try {
          deps.open(request.raw, reply.raw, { reader, exp: claims.exp, start, headers })
        } catch (err) {
          request.log.error({ err }, 'could not open the alerts stream')
          request.raw.socket.destroy()
        }
      },
    )
  }
}
