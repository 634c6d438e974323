import type { Socket } from 'node:net'
import { type AlertEntry, visibleRulesKey } from './alert-entry.js'
import type { StreamReader } from './alert-reader.js'
import type { Position } from './resume-token.js'
import type { SseClient } from './sse-client.js'
import { createSseClients, type SseClientsOptions } from './sse-clients.js'
import { sseChunk } from './sse-frames.js'

export interface BroadcasterOptions extends SseClientsOptions {
  writesPerSecond: number
  maxFlushDelayMs: number
  /** Clients written per event-loop turn before the sweep yields to I/O (Kafka, HTTP). */
  sweepChunk?: number
}

export interface SseBroadcaster {
  readonly clientCount: number
  /** Reserves a connection slot for the user; false when the per-user cap is reached. */
  acquire(user: string): boolean
  release(user: string): void
  /** Creates a client in the catching-up state; it receives live entries (as `reader` sees them) from now on. */
  connect(socket: Socket, reader: StreamReader): SseClient
  /**
   * Sends what the client held while catching up, then streams live. `position` is where the
   * client stands after its replay; the caller guarantees the consumer is at or past it.
   */
  goLive(client: SseClient, position: Position): void
  publish(entries: readonly AlertEntry[]): void
  close(): Promise<void>
}

/**
 * Fan-out of live alerts by a rolling sweep over the clients. Published entries get consecutive
 * sequence numbers in a shared log, and every live client remembers the sequence it has been
 * sent up to. A sweep visits the clients in chunks, yielding to the event loop between chunks
 * (so Kafka fetches and HTTP requests are served mid-sweep), and writes each client everything
 * it has not had yet in one write. Entries published mid-sweep ride along with the rest of the
 * sweep; only the clients already visited need the next one. So an alert reaches everyone within
 * about one sweep, and under load sweeps carry more alerts instead of multiplying syscalls.
 *
 * Socket writes are the cost (one write syscall per client per sweep; on loopback the kernel
 * also charges the reader's wake-up to the writer). A write budget spaces sweep starts so that,
 * with many clients, each sweep carries several alerts. The bytes for a run of entries are
 * concatenated and HTTP-chunk framed once per (filter, starting sequence) and shared by every
 * client that needs exactly that run.
 *
 * Alerts that matched a private rule are not seen alike by everyone. A run holding some is keyed
 * also by how this client's reader sees each of them (hidden, or which rules are visible): the
 * readers they do not concern (usually all but a few) still share one chunk, and runs without
 * them (the common case) cost nothing more.
 */
export function createSseBroadcaster(options: BroadcasterOptions): SseBroadcaster {
  const { metrics } = options
  const sweepChunk = options.sweepChunk ?? 256
  const clients = createSseClients(options)
  const { live } = clients
  // The log of live entries not yet sent to every live client: log[i] has sequence logBase + i.
  let log: AlertEntry[] = []
  let logBase = 0
  // Sequences of the entries in the log that not every reader sees alike, ascending.
  let privateSeqs: number[] = []
  const head = () => logBase + log.length
  const sentUpTo = new WeakMap<SseClient, number>()
  // Sweep state: the iterator over `live` (Set iterators see additions and survive deletions).
  let sweep: Iterator<SseClient> | undefined
  let sweepStartedAt = 0
  let sweepMin = 0
  let sweepSent = 0
  let scheduled = false
  let lastSweepAt = Number.NEGATIVE_INFINITY
  // Shared chunks for the current head: key = filterKey + starting sequence.
  let chunks = new Map<string, { chunk: Buffer; frames: number } | null>()
  let chunksHead = -1
  let closing = false

  /** The part of a chunk key that says how the client's reader sees the private entries from `from`. */
  const privateView = (reader: StreamReader, from: number) => {
    let view = ''
    for (let i = privateSeqs.length - 1; i >= 0 && privateSeqs[i]! >= from; i--) {
      const entry = log[privateSeqs[i]! - logBase]!
      const visible = reader.view(entry.alert, entry)
      view += visible === null ? '-' : `+${visibleRulesKey(visible)}`
    }
    return view
  }

  /** Everything from sequence `from` to the head that the client's reader gets, framed once. */
  const chunkFor = (client: SseClient, from: number) => {
    if (chunksHead !== head()) {
      chunks = new Map()
      chunksHead = head()
    }
    const { reader } = client
    const hasPrivate = privateSeqs.length > 0 && privateSeqs.at(-1)! >= from
    const key = `${reader.filterKey}\u0000${from}${hasPrivate ? `\u0000${privateView(reader, from)}` : ''}`
    let shared = chunks.get(key)
    if (shared === undefined) {
      const frames: Buffer[] = []
      for (let i = from - logBase; i < log.length; i++) {
        const frame = reader.frame(log[i]!)
        if (frame) frames.push(frame)
      }
      shared = frames.length === 0 ? null : { chunk: sseChunk(frames), frames: frames.length }
      chunks.set(key, shared)
    }
    return shared
  }

  const send = (client: SseClient) => {
    const from = sentUpTo.get(client) ?? head()
    if (from >= head()) return
    sentUpTo.set(client, head())
    const shared = chunkFor(client, from)
    if (shared && client.write(shared.chunk, shared.frames)) sweepSent += shared.frames
  }

  /** Writes up to `limit` clients of the current sweep; true when the sweep is complete. */
  const step = (limit: number): boolean => {
    if (!sweep) {
      sweep = live.values()
      sweepStartedAt = performance.now()
      lastSweepAt = sweepStartedAt
      sweepMin = Number.POSITIVE_INFINITY
      sweepSent = 0
    }
    for (let visited = 0; visited < limit; visited++) {
      const next = sweep.next()
      if (next.done) {
        sweep = undefined
        // Every live client was visited (Set iteration includes clients added meanwhile), so the
        // entries below the lowest sequence sent are no longer needed by anyone.
        const done = Math.min(sweepMin, head())
        log = log.slice(done - logBase)
        logBase = done
        if (privateSeqs.length > 0 && privateSeqs[0]! < done)
          privateSeqs = privateSeqs.filter((seq) => seq >= done)
        metrics.eventsSent.inc(sweepSent)
        metrics.flushSeconds.observe((performance.now() - sweepStartedAt) / 1000)
        return true
      }
      if (next.value.state !== 'live') continue
      send(next.value)
      sweepMin = Math.min(sweepMin, sentUpTo.get(next.value) ?? logBase)
    }
    return false
  }

  const run = () => {
    scheduled = false
    if (!step(sweepChunk)) return schedule(0)
    if (log.length > 0) schedule(budgetDelay())
  }

  /** With N clients, sweeps start at least N / budget seconds apart (capped): fewer, fuller writes. */
  const budgetDelay = () => {
    if (options.writesPerSecond <= 0) return 0
    const interval = Math.min(options.maxFlushDelayMs, (live.size / options.writesPerSecond) * 1000)
    return lastSweepAt + interval - performance.now()
  }

  const schedule = (delay: number) => {
    if (scheduled || closing) return
    scheduled = true
    if (delay <= 1) setImmediate(run)
    else setTimeout(run, delay)
  }

  return {
    get clientCount() {
      return clients.count
    },
    acquire: clients.acquire,
    release: clients.release,
    connect: clients.connect,
    goLive(client, position) {
      // Everything published so far was held (or replayed): the client is at the head.
      if (clients.goLive(client, position)) sentUpTo.set(client, head())
    },
    publish(entries) {
      if (entries.length === 0) return
      clients.hold(entries)
      for (const entry of entries) {
        if (!entry.sharedByAll) privateSeqs.push(head())
        log.push(entry)
      }
      // A lone alert after a quiet spell goes out at once; a sweep under way picks it up.
      if (!sweep) schedule(budgetDelay())
    },
    async close() {
      closing = true
      // Whatever is published reaches everyone before the streams end: finish the sweep under
      // way, then one full sweep if some clients still lack entries published during it.
      if (sweep) step(Number.POSITIVE_INFINITY)
      if (log.length > 0) step(Number.POSITIVE_INFINITY)
      await clients.close()
    },
  }
}
