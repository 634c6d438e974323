import http from 'node:http'
import https from 'node:https'
import {
  assertAddressAllowed,
  guardedLookup,
  type HostResolver,
  parseWebhookUrl,
} from '@intellisite/webhooks'
import type { DeliveryTimeouts } from './config.js'

/** How an attempt ended; only `success` (any 2xx) delivers. */
export type AttemptOutcome =
  | 'success'
  | 'http_error'
  | 'gone'
  | 'redirect'
  | 'timeout'
  | 'network_error'
  | 'refused'

export interface AttemptResult {
  outcome: AttemptOutcome
  status: number | null
  latencyMs: number
  error: string | null
}

export interface WebhookRequest {
  url: string
  headers: Record<string, string>
  body: string
}

export interface WebhookSenderOptions {
  allowPrivate: boolean
  /** Host name resolution; DNS unless a test injects its own. */
  resolve?: HostResolver
  timeouts: DeliveryTimeouts
  /** Response bodies are read (so the connection can be reused) up to this many bytes, then dropped. */
  maxResponseBytes: number
}

const EXCERPT_CHARS = 200
const USER_AGENT = 'intellisite-notifier/1 (Standard Webhooks)'

/**
 * One HTTP POST per attempt, over node:http(s) with a guarded `lookup`: the socket only ever dials
 * an address checked in that very lookup, and a literal IP host is checked before the request,
 * because Node does not call `lookup` for literals. Redirects are never followed (a 3xx is a
 * failed attempt): following one would dial an address nobody checked at registration.
 */
export function createWebhookSender(options: WebhookSenderOptions) {
  const { allowPrivate, timeouts, maxResponseBytes } = options
  const lookup = guardedLookup({ allowPrivate, ...(options.resolve && { resolve: options.resolve }) })
  // Keep-alive pools per host:port; no cap on sockets here: the worker bounds what is in flight
  // per endpoint, and a per-host cap would couple endpoints that share a host.
  const agents = {
    'http:': new http.Agent({ keepAlive: true, timeout: timeouts.totalMs }),
    'https:': new https.Agent({ keepAlive: true, timeout: timeouts.totalMs }),
  }

  function send(request: WebhookRequest): Promise<AttemptResult> {
    const started = performance.now()
    const elapsed = () => Math.round(performance.now() - started)
    let url: URL
    try {
      const target = parseWebhookUrl(request.url, { allowPrivate })
      if (target.literal !== null) assertAddressAllowed(target.literal, target.literal, allowPrivate)
      url = target.url
    } catch (err) {
      return Promise.resolve({
        outcome: 'refused',
        status: null,
        latencyMs: elapsed(),
        error: (err as Error).message,
      })
    }
    const secure = url.protocol === 'https:'
    const body = Buffer.from(request.body)

    return new Promise<AttemptResult>((resolve) => {
      let settled = false
      let connectTimer: NodeJS.Timeout | undefined
      let responseTimer: NodeJS.Timeout | undefined
      let totalTimer: NodeJS.Timeout | undefined
      const finish = (outcome: AttemptOutcome, status: number | null, error: string | null) => {
        if (settled) return
        settled = true
        clearTimeout(connectTimer)
        clearTimeout(responseTimer)
        clearTimeout(totalTimer)
        resolve({ outcome, status, latencyMs: elapsed(), error })
      }
      const abort = (outcome: AttemptOutcome, error: string) => {
        finish(outcome, null, error)
        req.destroy()
      }

      const req = (secure ? https : http).request(url, {
        method: 'POST',
        agent: agents[secure ? 'https:' : 'http:'],
        lookup,
        headers: {
          ...request.headers,
          'content-type': 'application/json',
          'content-length': String(body.length),
          'user-agent': USER_AGENT,
        },
      })
      responseTimer = setTimeout(
        () => abort('timeout', `no response within ${timeouts.responseMs} ms`),
        timeouts.responseMs,
      )
      totalTimer = setTimeout(
        () => abort('timeout', `not complete within ${timeouts.totalMs} ms`),
        timeouts.totalMs,
      )
      req.on('socket', (socket) => {
        // A kept-alive socket is already connected (to an address checked when it was opened).
        if (!socket.connecting) return
        connectTimer = setTimeout(
          () => abort('timeout', `no connection within ${timeouts.connectMs} ms`),
          timeouts.connectMs,
        )
        socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer))
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        finish(err.code === 'TARGET_REFUSED' ? 'refused' : 'network_error', null, describeError(err))
      })
      req.on('response', (response) => {
        clearTimeout(responseTimer)
        const status = response.statusCode ?? 0
        let received = 0
        let excerpt = ''
        const complete = () => {
          if (status >= 200 && status < 300) return finish('success', status, null)
          const text = excerpt.replace(/\s+/g, ' ').trim().slice(0, EXCERPT_CHARS)
          if (status >= 300 && status < 400) {
            const location = response.headers.location
            return finish(
              'redirect',
              status,
              `HTTP ${status}: redirect${location ? ` to ${location.slice(0, EXCERPT_CHARS)}` : ''} not followed`,
            )
          }
          finish(status === 410 ? 'gone' : 'http_error', status, `HTTP ${status}${text ? `: ${text}` : ''}`)
        }
        response.on('data', (chunk: Buffer) => {
          received += chunk.length
          if (excerpt.length < EXCERPT_CHARS) excerpt += chunk.toString('utf8', 0, EXCERPT_CHARS)
          if (received > maxResponseBytes) {
            // The rest is not read: the socket goes, not back to the pool.
            response.destroy()
            complete()
          }
        })
        response.on('end', complete)
        // The status is what counts: a body cut short after a 2xx is still an accepted delivery.
        response.on('error', complete)
        response.on('aborted', complete)
      })
      req.end(body)
    })
  }

  return {
    send,
    close(): void {
      agents['http:'].destroy()
      agents['https:'].destroy()
    },
  }
}

export type WebhookSender = ReturnType<typeof createWebhookSender>

function describeError(err: NodeJS.ErrnoException): string {
  if (err.code === 'TARGET_REFUSED') return `refused: ${err.message}`
  const nested = (err as { errors?: NodeJS.ErrnoException[] }).errors
  if (Array.isArray(nested) && nested.length > 0) return nested.map(describeError).join('; ')
  return err.code ? `${err.code}: ${err.message}` : err.message
}
