// The obvious fan-out, as a reference for bench/alerts.ts: every published alert is written to
// every live client at once, one write per client per alert. Same clients (bounded queues, slow
// clients dropped), same seam handling and same close as the real broadcaster; only the strategy
// differs, so that the benchmark compares fan-out and nothing else.
import { type BroadcasterOptions, heldFrames, type SseBroadcaster } from '../../src/alerts/sse-broadcaster.js'
import { type CloseReason, SseClient } from '../../src/alerts/sse-client.js'
import { httpChunk } from '../../src/alerts/sse-frames.js'

export function createNaiveBroadcaster(options: BroadcasterOptions): SseBroadcaster {
  const { metrics } = options
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

  const releaseUser = (user: string) => {
    const count = (perUser.get(user) ?? 1) - 1
    if (count <= 0) perUser.delete(user)
    else perUser.set(user, count)
  }

  const onClose = (client: SseClient, reason: CloseReason) => {
    if (!live.delete(client) && !catchingUp.delete(client)) return
    if (reason !== 'client-closed') metrics.dropped.inc({ reason })
    releaseUser(client.user)
    if (closing && live.size + catchingUp.size === 0) for (const resolve of closeWaiters.splice(0)) resolve()
  }

  return {
    get clientCount() {
      return live.size + catchingUp.size
    },
    acquire(user) {
      const count = perUser.get(user) ?? 0
      if (closing || count >= options.maxConnectionsPerUser) return false
      perUser.set(user, count + 1)
      return true
    },
    release: releaseUser,
    connect(socket, { user, filter, filterKey }) {
      const client = new SseClient({
        socket,
        user,
        filter,
        filterKey,
        maxQueueFrames: options.maxQueueFrames,
        maxQueueBytes: options.maxQueueBytes,
        onClose,
      })
      catchingUp.add(client)
      return client
    },
    goLive(client, position) {
      if (client.state !== 'catching-up') return
      const frames = heldFrames(client, position)
      client.state = 'live'
      catchingUp.delete(client)
      live.add(client)
      if (frames.length > 0 && client.write(httpChunk(Buffer.concat(frames)), frames.length)) {
        metrics.eventsSent.inc(frames.length)
      }
    },
    publish(entries) {
      for (const client of catchingUp) client.hold(entries)
      for (const entry of entries) {
        const chunk = httpChunk(entry.frame)
        let sent = 0
        for (const client of live) {
          if (client.filter && !client.filter(entry)) continue
          if (client.write(chunk, 1)) sent++
        }
        metrics.eventsSent.inc(sent)
      }
    },
    async close() {
      closing = true
      clearInterval(heartbeat)
      if (live.size + catchingUp.size === 0) return
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve))
      for (const client of [...live, ...catchingUp]) client.end('shutdown')
      await done
    },
  }
}
