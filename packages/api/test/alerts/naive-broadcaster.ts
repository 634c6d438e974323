// The obvious fan-out, as a reference for bench/alerts.ts: every published alert is written to
// every live client at once, one write per client per alert. Same clients (bounded queues, slow
// clients dropped), same seam handling and same close as the real broadcaster (both use
// `createSseClients`); only the strategy differs, so that the benchmark compares fan-out and
// nothing else.
import type { BroadcasterOptions, SseBroadcaster } from '../../src/alerts/sse-broadcaster.js'
import { createSseClients } from '../../src/alerts/sse-clients.js'
import { sseChunk } from '../../src/alerts/sse-frames.js'

export function createNaiveBroadcaster(options: BroadcasterOptions): SseBroadcaster {
  const { metrics } = options
  const clients = createSseClients(options)
  return {
    get clientCount() {
      return clients.count
    },
    acquire: clients.acquire,
    release: clients.release,
    connect: clients.connect,
    goLive(client, position) {
      clients.goLive(client, position)
    },
    publish(entries) {
      clients.hold(entries)
      for (const entry of entries) {
        // One chunk per way of seeing the alert (one for all, unless it matched a private rule).
        const chunks = new Map<Buffer, Buffer>()
        let sent = 0
        for (const client of clients.live) {
          const frame = client.reader.frame(entry)
          if (!frame) continue
          let chunk = chunks.get(frame)
          if (!chunk) {
            chunk = sseChunk([frame])
            chunks.set(frame, chunk)
          }
          if (client.write(chunk, 1)) sent++
        }
        metrics.eventsSent.inc(sent)
      }
    },
    close: () => clients.close(),
  }
}
