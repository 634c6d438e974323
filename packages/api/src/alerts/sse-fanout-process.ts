/**
 * A fan-out process (started by sse-fanout-pool.ts with an IPC channel): it owns the sockets of
 * the live streams handed to it and runs the same rolling-sweep broadcaster over them, fed by the
 * API process's one Kafka consumer through `publish` messages. Socket writes are the cost of
 * fan-out; spreading the streams over processes spreads those writes over cores.
 */
import type { Socket } from 'node:net'
import pino from 'pino'
import { createAlertFilter } from './alert-entry.js'
import { createSseBroadcaster, type FanOutMetrics, type SseBroadcaster } from './sse-broadcaster.js'
import type { CloseReason } from './sse-client.js'
import { type FromFanOut, fromWire, type ToFanOut } from './sse-fanout-wire.js'

const send = (message: FromFanOut) => process.send?.(message)

let broadcaster: SseBroadcaster | undefined
let eventsSent = 0
let dropped: Partial<Record<CloseReason, number>> = {}
let sweeps: number[] = []
const metrics: FanOutMetrics = {
  eventsSent: {
    inc: (value = 1) => {
      eventsSent += value
    },
  },
  dropped: {
    inc: ({ reason }) => {
      dropped[reason] = (dropped[reason] ?? 0) + 1
    },
  },
  flushSeconds: { observe: (seconds) => sweeps.push(seconds) },
}

function flushStats(): void {
  if (eventsSent === 0 && sweeps.length === 0 && Object.keys(dropped).length === 0) return
  send({ type: 'stats', eventsSent, dropped, sweeps })
  eventsSent = 0
  dropped = {}
  sweeps = []
}
const statsTimer = setInterval(flushStats, 1_000)

/** `createAlertFilter`'s key is `makes|categories`, each sorted and comma-separated. */
function filterFromKey(key: string) {
  if (key === '') return null
  const [make, category] = key.split('|')
  return createAlertFilter({ make: make || undefined, category: category || undefined }).filter
}

process.on('message', (message: ToFanOut, handle?: Socket) => {
  switch (message.type) {
    case 'init': {
      const { settings } = message
      broadcaster = createSseBroadcaster({
        ...settings,
        // The API process enforces the per-user cap before it hands a stream over.
        maxConnectionsPerUser: Number.POSITIVE_INFINITY,
        metrics,
        logger: pino({ level: settings.logLevel }).child({ component: 'alerts-fanout', pid: process.pid }),
      })
      send({ type: 'ready' })
      return
    }
    case 'publish':
      broadcaster?.publish(message.entries.map(fromWire))
      return
    case 'client': {
      if (!handle) return
      const { id } = message
      handle.once('close', () => send({ type: 'closed', id }))
      // Read (and discard) so that a peer's FIN is seen at once, as the HTTP parser did before.
      handle.resume()
      if (!broadcaster?.acquire(message.user)) {
        handle.destroy()
        return
      }
      const client = broadcaster.connect(handle, {
        user: message.user,
        filter: filterFromKey(message.filterKey),
        filterKey: message.filterKey,
      })
      client.pending = message.held.map(fromWire)
      const { ending } = message
      if (ending) {
        client.closeAt(
          ending.at,
          ending.reason,
          ending.finalFrame ? Buffer.from(ending.finalFrame, 'base64') : undefined,
        )
      }
      broadcaster.goLive(client, message.position)
      return
    }
    case 'close':
      void (async () => {
        await broadcaster?.close()
        clearInterval(statsTimer)
        flushStats()
        send({ type: 'closed-all' })
      })()
      return
  }
})
// Without the API process there is no one to feed the streams: end with it.
process.on('disconnect', () => process.exit(0))
