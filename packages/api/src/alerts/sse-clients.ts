import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { AlertEntry } from './alert-entry.js'
import type { StreamReader } from './alert-reader.js'
import type { AlertsMetrics } from './alerts-metrics.js'
import type { Position } from './resume-token.js'
import { type CloseReason, SseClient } from './sse-client.js'

export interface SseClientsOptions {
  heartbeatMs: number
  maxQueueFrames: number
  maxQueueBytes: number
  maxConnectionsPerUser: number
  metrics: AlertsMetrics
  logger: Logger
}

/**
 * The open SSE clients of one process, whatever the fan-out: per-user connection slots, the
 * catching-up clients that hold live entries during their replay, the live ones, heartbeats,
 * drops and the final close. A fan-out strategy decides only how live entries reach `live`.
 */
export function createSseClients(options: SseClientsOptions) {
  const { metrics, logger } = options
  const live = new Set<SseClient>()
  const catchingUp = new Set<SseClient>()
  const perUser = new Map<string, number>()
  let closing = false
  const closeWaiters: (() => void)[] = []

  const heartbeat = setInterval(() => {
    for (const client of live) client.heartbeat()
    for (const client of catchingUp) client.heartbeat()
  }, options.heartbeatMs)
  heartbeat.unref()

  const release = (user: string) => {
    const count = (perUser.get(user) ?? 1) - 1
    if (count <= 0) perUser.delete(user)
    else perUser.set(user, count)
  }

  const onClose = (client: SseClient, reason: CloseReason) => {
    logger.debug({ reason }, 'SSE client closed')
    if (!live.delete(client) && !catchingUp.delete(client)) return
    if (reason !== 'client-closed') metrics.dropped.inc({ reason })
    if (reason === 'slow-client') logger.info({ user: client.user }, 'slow SSE client disconnected')
    release(client.user)
    if (closing && live.size + catchingUp.size === 0) for (const resolve of closeWaiters.splice(0)) resolve()
  }

  return {
    live: live as ReadonlySet<SseClient>,
    get count() {
      return live.size + catchingUp.size
    },
    /** Reserves a connection slot for the user; false when the per-user cap is reached or closing. */
    acquire(user: string): boolean {
      const count = perUser.get(user) ?? 0
      if (closing || count >= options.maxConnectionsPerUser) return false
      perUser.set(user, count + 1)
      return true
    },
    release,
    /** A new client, catching up: it holds live entries from now on until it goes live. */
    connect(socket: Socket, reader: StreamReader) {
      const client = new SseClient({
        socket,
        reader,
        maxQueueFrames: options.maxQueueFrames,
        maxQueueBytes: options.maxQueueBytes,
        onClose,
      })
      catchingUp.add(client)
      return client
    },
    /** Entries published while some clients catch up: they keep them for `goLive`. */
    hold(entries: readonly AlertEntry[]): void {
      for (const client of catchingUp) client.hold(entries)
    },
    /**
     * Makes a caught-up client live and sends it what it held beyond `position`: de-duplication at
     * the seam is by position. False when the client is not catching up (closed meanwhile, or
     * already live).
     */
    goLive(client: SseClient, position: Position): boolean {
      if (client.state !== 'catching-up') return false
      const frames = client.reader.framesFrom(client.pending, [...position])
      client.pending = []
      client.state = 'live'
      catchingUp.delete(client)
      live.add(client)
      if (client.send(frames)) metrics.eventsSent.inc(frames.length)
      return true
    },
    /** Ends every stream ('shutdown') and resolves once all have closed; no new client is accepted. */
    async close(): Promise<void> {
      closing = true
      clearInterval(heartbeat)
      if (live.size + catchingUp.size === 0) return
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve))
      for (const client of [...live, ...catchingUp]) client.end('shutdown')
      await done
    },
  }
}

export type SseClients = ReturnType<typeof createSseClients>
