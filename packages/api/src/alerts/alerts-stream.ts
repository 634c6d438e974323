import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { StreamReader } from './alert-reader.js'
import type { AlertsConsumer } from './alerts-consumer.js'
import type { StreamStart } from './catch-up.js'
import type { AlertsConfig } from './config.js'
import type { Position } from './resume-token.js'
import type { SseBroadcaster } from './sse-broadcaster.js'
import type { SseClient } from './sse-client.js'
import { retryChunk, TOKEN_EXPIRED_CHUNK } from './sse-frames.js'

export interface StreamRequest {
  /** Who reads (the token's subject) and what they selected. */
  reader: StreamReader
  /** Token expiry, epoch seconds. */
  exp: number | undefined
  start: StreamStart
  /** Extra response headers set by earlier hooks (CORS, request id). */
  headers: Record<string, string>
}

export interface StreamDeps {
  config: AlertsConfig
  consumer: Pick<AlertsConsumer, 'position'>
  broadcaster: Pick<SseBroadcaster, 'connect' | 'goLive'>
  /** Brings a client that starts in the past up to `live`, then makes it live (`createCatchUp`). */
  catchUp(client: SseClient, start: StreamStart, live: Position): Promise<void>
  logger: Logger
}

/**
 * Opens one SSE stream on a hijacked socket (the caller already authenticated the request and
 * reserved a connection slot). The client is registered for live alerts first and only then
 * catches up, so nothing falls between replay and live; at the seam duplicates are dropped by
 * Kafka position.
 */
export function createStreamOpener(deps: StreamDeps) {
  const { config, consumer, broadcaster, logger } = deps
  const retry = retryChunk(config.SSE_RETRY_MS)

  function writeHead(socket: Socket, headers: Record<string, string>): void {
    const lines = [
      'HTTP/1.1 200 OK',
      'Content-Type: text/event-stream; charset=utf-8',
      'Cache-Control: no-cache, no-transform',
      'Connection: keep-alive',
      'X-Accel-Buffering: no',
      'Transfer-Encoding: chunked',
    ]
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
    // One write (one packet, with Nagle off) for the head and the first chunk.
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), retry]))
  }

  function scheduleEnd(client: SseClient, exp: number | undefined): void {
    const jitter = 1 - config.SSE_LIFETIME_JITTER * Math.random()
    const lifetimeAt = Date.now() + config.SSE_MAX_LIFETIME_MS * jitter
    const expiresAt = exp === undefined ? Number.POSITIVE_INFINITY : exp * 1000
    // Expired tokens are not renewed in-band: the stream ends at `exp` with `event: token-expired`;
    // a reconnect with the old token gets 401, so the client must fetch a new token.
    if (expiresAt <= lifetimeAt) client.closeAt(expiresAt, 'token-expired', TOKEN_EXPIRED_CHUNK)
    else client.closeAt(lifetimeAt, 'lifetime')
  }

  return function open(socket: Socket, request: StreamRequest): void {
    socket.setNoDelay(true)
    socket.setTimeout(0)
    socket.setKeepAlive(true, 60_000)
    // Registered first, so that anything thrown below still releases the slot when the socket
    // is destroyed; a new client only holds alerts until it goes live, so nothing is written
    // before the head.
    const client = broadcaster.connect(socket, request.reader)
    // Same tick as connect: every alert after `live` reaches the client through the broadcaster.
    const live = consumer.position()
    writeHead(socket, request.headers)
    scheduleEnd(client, request.exp)
    const { start } = request
    if (!start.resume && start.since === undefined) {
      broadcaster.goLive(client, live)
      return
    }
    deps.catchUp(client, start, live).catch((err: unknown) => {
      logger.warn({ err }, 'SSE catch-up failed')
      client.end('replay-failed')
    })
  }
}
