import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { problemSchema as problem } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import { createAlertFilter } from './alert-entry.js'
import type { StreamRequest } from './alerts-stream.js'
import { AlertsHttpError, unauthorized } from './errors.js'
import { decodeResumeToken } from './resume-token.js'
import { parseSince } from './since.js'
import type { SseBroadcaster } from './sse-broadcaster.js'

const querystring = z.object({
  access_token: z
    .string()
    .optional()
    .describe('JWT, for clients that cannot send an Authorization header (browser EventSource)'),
  lastEventId: z
    .string()
    .optional()
    .describe('Resume token (an event `id`) for clients that cannot send the Last-Event-ID header'),
  since: z
    .string()
    .refine((value) => parseSince(value) !== null, 'must be epoch milliseconds or an ISO-8601 date-time')
    .optional()
    .describe('Start from alerts published at or after this time (ignored when resuming)'),
  make: z.string().max(500).optional().describe('Comma-separated makes, case-insensitive'),
  category: z
    .string()
    .max(500)
    .optional()
    .describe('Comma-separated categories; matches any token of the alert category, case-insensitive'),
})

const jwtPayload = z.object({ sub: z.string().min(1), username: z.string(), exp: z.number().optional() })

export interface AlertsRouteDeps {
  broadcaster: SseBroadcaster
  accepting(): boolean
  open(socket: FastifyRequest['raw']['socket'], request: StreamRequest): void
}

function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
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
            'resume token (the Kafka position after it). Reconnect with `Last-Event-ID` (or `lastEventId`) ' +
            'to receive every later alert exactly once. `event: reset` means the position is no longer ' +
            'retained; the stream restarts from the oldest retained alert (its `id`). `event: token-expired` ' +
            'precedes the end of the stream when the JWT expires: get a new token before reconnecting. ' +
            'Comment lines are heartbeats.',
          security: SECURED,
          querystring,
          response: {
            // A registered id, so the app's OpenAPI post-processing can label it text/event-stream.
            200: z.string().meta({
              id: 'AlertEventStream',
              description:
                'An endless `text/event-stream`: `retry:`, then `event: alert` frames (`id:` resume token, ' +
                '`data:` one Alert as JSON), `event: reset`, `event: token-expired`, `:` heartbeats',
              example:
                'retry: 2000\n\nid: AQOwCRk4\nevent: alert\ndata: {"id":"…","detectedAt":"2024-05-01T12:00:00.000Z",' +
                '"year":2011,"make":"Toyota","model":"Land Cruiser","category":"SUV","reason":"category matches SUV"}\n\n',
            }),
            400: problem.describe('Malformed Last-Event-ID, since or filter'),
            401: problem.describe('Missing, invalid or expired token'),
            429: problem.describe('Too many open streams for this user'),
            503: problem.describe('The alerts consumer is not running (starting or shutting down)'),
          },
        },
      },
      async (request, reply) => {
        const token = bearer(request.headers.authorization) ?? request.query.access_token
        if (!token) throw unauthorized('missing')
        let verified: unknown
        try {
          verified = app.jwt.verify(token)
        } catch (err) {
          throw unauthorized((err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? 'expired' : 'invalid')
        }
        const parsed = jwtPayload.safeParse(verified)
        if (!parsed.success) throw unauthorized('invalid')
        const claims = parsed.data
        const header = request.headers['last-event-id']
        const lastEventId =
          (typeof header === 'string' && header !== '' ? header : undefined) ?? request.query.lastEventId
        // The header wins over the query: on reconnect EventSource keeps the URL but sends a newer id.
        const resume = lastEventId ? decodeResumeToken(lastEventId) : undefined
        const since =
          !resume && request.query.since ? (parseSince(request.query.since) ?? undefined) : undefined
        const { filter, key } = createAlertFilter(request.query)
        if (!deps.accepting()) {
          throw new AlertsHttpError(503, 'ALERTS_UNAVAILABLE', 'The alerts stream is not available right now')
        }
        if (!deps.broadcaster.acquire(claims.sub)) {
          throw new AlertsHttpError(429, 'TOO_MANY_STREAMS', 'Too many open alert streams for this user')
        }
        reply.hijack()
        try {
          deps.open(request.raw.socket, {
            user: claims.sub,
            exp: claims.exp,
            filter,
            filterKey: key,
            resume,
            since,
            headers: forwardedHeaders(reply.getHeaders()),
          })
        } catch (err) {
          request.log.error({ err }, 'could not open the alerts stream')
          request.raw.socket.destroy()
        }
      },
    )
  }
}
