import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { type AlertEntry, type AlertFilter, alertFrame, samePosition } from './alert-entry.js'
import type { AlertsMetrics } from './alerts-metrics.js'
import { encodeResumeToken, type Position } from './resume-token.js'
import { type CloseReason, httpChunk, SseClient } from './sse-client.js'

export interface BroadcasterOptions {
  heartbeatMs: number
  maxQueueFrames: number
  maxQueueBytes: number
  maxConnectionsPerUser: number
  writesPerSecond: number
  maxFlushDelayMs: number
  metrics: AlertsMetrics
  logger: Logger
}

export interface SseBroadcaster {
  readonly clientCount: number
  /** Reserves a connection slot for the user; false when the per-user cap is reached. */
  acquire(user: string): boolean
  release(user: string): void
  /** Creates a client in the catching-up state; it receives live entries from now on. */
  connect(socket: Socket, options: { user: string; filter: AlertFilter | null; filterKey: string }): SseClient
  /**
   * Sends what the client held while catching up, then streams live. `position` is where the
   * client stands after its replay; the caller guarantees the consumer is at or past it.
   */
  goLive(client: SseClient, position: Position): void
  publish(entries: readonly AlertEntry[]): void
  close(): Promise<void>
}

/**
 * Fan-out of live alerts. Entries published close together are flushed together (same event-loop
 * turn, or within a write budget when there are many clients), so every client gets one write per
 * flush whatever the alert rate: under load flushes grow instead of multiplying syscalls. Each flush concatenates the frames once per
 * distinct filter, and all clients with the same filter share that Buffer.
 */
export function createSseBroadcaster(options: BroadcasterOptions): SseBroadcaster {
  const { metrics, logger } = options
  const clients = new Set<SseClient>()
  const perUser = new Map<string, number>()
  let batch: AlertEntry[] = []
  let flushScheduled = false
  let lastFlushAt = 0
  let closing = false
  const closeWaiters: (() => void)[] = []

  const heartbeat = setInterval(() => {
    for (const client of clients) client.heartbeat()
  }, options.heartbeatMs)
  heartbeat.unref()

  const onClose = (client: SseClient, reason: CloseReason) => {
    logger.debug({ reason }, 'SSE client closed')
    if (!clients.delete(client)) return
    if (reason !== 'client-closed') metrics.dropped.inc({ reason })
    if (reason === 'slow-client') logger.info({ user: client.user }, 'slow SSE client disconnected')
    releaseUser(client.user)
    if (closing && clients.size === 0) for (const resolve of closeWaiters.splice(0)) resolve()
  }

  const releaseUser = (user: string) => {
    const count = (perUser.get(user) ?? 1) - 1
    if (count <= 0) perUser.delete(user)
    else perUser.set(user, count)
  }

  const flush = () => {
    flushScheduled = false
    lastFlushAt = performance.now()
    const entries = batch
    batch = []
    if (entries.length === 0 || clients.size === 0) return
    const chunks = new Map<string, { chunk: Buffer; frames: number } | null>()
    let sent = 0
    for (const client of clients) {
      if (client.state === 'catching-up') {
        client.hold(entries)
        continue
      }
      if (client.state !== 'live') continue
      let shared = chunks.get(client.filterKey)
      if (shared === undefined) {
        const selected = client.filter ? entries.filter(client.filter) : entries
        shared =
          selected.length === 0
            ? null
            : {
                chunk: httpChunk(
                  selected.length === 1 ? selected[0]!.frame : Buffer.concat(selected.map((e) => e.frame)),
                ),
                frames: selected.length,
              }
        chunks.set(client.filterKey, shared)
      }
      if (shared && client.write(shared.chunk, shared.frames)) sent += shared.frames
    }
    metrics.eventsSent.inc(sent)
    metrics.flushSeconds.observe((performance.now() - lastFlushAt) / 1000)
  }

  return {
    get clientCount() {
      return clients.size
    },
    acquire(user) {
      const count = perUser.get(user) ?? 0
      if (closing || count >= options.maxConnectionsPerUser) return false
      perUser.set(user, count + 1)
      return true
    },
    release: releaseUser,
    connect(socket, { user, filter, filterKey }) {
      // Alerts already consumed but not yet flushed are before the caller's live position (they
      // are in the window): flushing them now keeps them from reaching this client a second time.
      flush()
      const client = new SseClient({
        socket,
        user,
        filter,
        filterKey,
        maxQueueFrames: options.maxQueueFrames,
        maxQueueBytes: options.maxQueueBytes,
        onClose,
      })
      clients.add(client)
      return client
    },
    goLive(client, position) {
      if (client.state !== 'catching-up') return
      // De-duplication at the seam: whatever the replay already covered is skipped by position.
      // A held frame's shared id is reused when it equals the client's own position (the usual
      // case); otherwise (resumed from a replica that was ahead) the id is re-encoded for it.
      const current = [...position]
      const frames: Buffer[] = []
      for (const entry of client.pending) {
        if (entry.offset < (current[entry.partition] ?? 0)) continue
        current[entry.partition] = entry.offset + 1
        frames.push(
          samePosition(current, entry.position)
            ? entry.frame
            : Buffer.from(alertFrame(encodeResumeToken(current), entry.alert)),
        )
      }
      client.pending = []
      client.state = 'live'
      if (frames.length > 0 && client.write(httpChunk(Buffer.concat(frames)), frames.length)) {
        metrics.eventsSent.inc(frames.length)
      }
    },
    publish(entries) {
      if (entries.length === 0) return
      for (const entry of entries) batch.push(entry)
      if (flushScheduled) return
      flushScheduled = true
      // Budget of socket writes per second: with many clients, flushes are spaced so that each
      // carries several alerts (one write per client per flush). A lone alert after a quiet spell
      // still goes out at once.
      const interval =
        options.writesPerSecond > 0
          ? Math.min(options.maxFlushDelayMs, (clients.size / options.writesPerSecond) * 1000)
          : 0
      const delay = lastFlushAt + interval - performance.now()
      if (delay <= 1) setImmediate(flush)
      else setTimeout(flush, delay)
    },
    async close() {
      closing = true
      clearInterval(heartbeat)
      flush()
      if (clients.size === 0) return
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve))
      for (const client of clients) client.end('shutdown')
      await done
    },
  }
}
