import { type ChildProcess, fork } from 'node:child_process'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Position } from './resume-token.js'
import { type BroadcasterOptions, heldFrames, type SseBroadcaster } from './sse-broadcaster.js'
import { type CloseReason, SseClient } from './sse-client.js'
import { type FromFanOut, type ToFanOut, toWire } from './sse-fanout-wire.js'
import { httpChunk } from './sse-frames.js'

export interface FanOutPoolOptions extends BroadcasterOptions {
  /** Fan-out processes (at least 1). */
  processes: number
  /** Node flags of the fan-out processes; defaults to this process's (e.g. a TypeScript loader). */
  execArgv?: string[]
  logLevel?: string
}

interface FanOutProcess {
  child: ChildProcess
  /** Streams it owns: id → user (for their connection slots). */
  streams: Map<number, string>
  /** Sockets on their way to it: if it dies first, their send never completes. */
  sending: Map<number, Socket>
  ready: boolean
  closed?: () => void
}

// Run from source the module is a .ts file next to this one; built, a .js file.
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const PROCESS_MODULE = fileURLToPath(
  new URL(FROM_SOURCE ? './sse-fanout-process.ts' : './sse-fanout-process.js', import.meta.url),
)
// From source the fan-out process needs a TypeScript loader, which this process may have got
// without a flag (a test runner).
const EXEC_ARGV =
  FROM_SOURCE && !process.execArgv.includes('tsx')
    ? ['--conditions=development', '--import', 'tsx', ...process.execArgv]
    : process.execArgv

/**
 * Fan-out over several processes. This process keeps what needs the app (auth, the Kafka
 * consumer, replays): a stream catches up here as before, and when it goes live, once everything
 * written to it has left this process, its socket is handed to the fan-out process with the
 * fewest streams, with the live alerts it held meanwhile. Every published alert goes to every
 * fan-out process over its IPC channel, in order, before any later hand-off, so the seam works as
 * in-process: the held alerts are de-duplicated by position and the stream is at the head of that
 * process's log. A fan-out process that dies takes its streams with it (their clients resume with
 * Last-Event-ID) and is replaced.
 */
export function createSseFanOutPool(options: FanOutPoolOptions): SseBroadcaster {
  const { metrics, logger } = options
  const catchingUp = new Set<SseClient>()
  /** Clients gone live here and waiting for their hand-off, with the position they stand at. */
  const handingOff = new Map<SseClient, Position>()
  const perUser = new Map<string, number>()
  const pool: FanOutProcess[] = []
  let nextId = 1
  let closing = false
  const closeWaiters: (() => void)[] = []

  const liveCount = () => pool.reduce((sum, p) => sum + p.streams.size, 0)

  const releaseUser = (user: string) => {
    const count = (perUser.get(user) ?? 1) - 1
    if (count <= 0) perUser.delete(user)
    else perUser.set(user, count)
  }

  const settle = () => {
    if (closing && catchingUp.size === 0) for (const resolve of closeWaiters.splice(0)) resolve()
  }

  const heartbeat = setInterval(() => {
    for (const client of catchingUp) client.heartbeat()
  }, options.heartbeatMs)
  heartbeat.unref()

  function start(slot: number): void {
    const child = fork(PROCESS_MODULE, [], {
      execArgv: options.execArgv ?? EXEC_ARGV,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const entry: FanOutProcess = { child, streams: new Map(), sending: new Map(), ready: false }
    pool[slot] = entry
    child.on('message', (message: FromFanOut) => {
      switch (message.type) {
        case 'ready':
          entry.ready = true
          logger.info({ pid: child.pid }, 'SSE fan-out process ready')
          return
        case 'closed': {
          const user = entry.streams.get(message.id)
          if (user === undefined) return
          entry.streams.delete(message.id)
          releaseUser(user)
          return
        }
        case 'stats':
          if (message.eventsSent > 0) metrics.eventsSent.inc(message.eventsSent)
          for (const [reason, count] of Object.entries(message.dropped)) {
            for (let i = 0; i < (count ?? 0); i++) metrics.dropped.inc({ reason: reason as CloseReason })
          }
          for (const seconds of message.sweeps) metrics.flushSeconds.observe(seconds)
          return
        case 'closed-all':
          entry.closed?.()
          return
      }
    })
    child.once('exit', (code, signal) => {
      const streams = entry.streams.size
      for (const user of entry.streams.values()) releaseUser(user)
      entry.streams.clear()
      for (const socket of entry.sending.values()) socket.destroy()
      entry.sending.clear()
      entry.closed?.()
      if (closing) return
      logger.error({ code, signal, streams }, 'SSE fan-out process exited; restarting it')
      start(slot)
    })
    child.send({
      type: 'init',
      settings: {
        heartbeatMs: options.heartbeatMs,
        maxQueueFrames: options.maxQueueFrames,
        maxQueueBytes: options.maxQueueBytes,
        writesPerSecond: options.writesPerSecond,
        maxFlushDelayMs: options.maxFlushDelayMs,
        sweepChunk: options.sweepChunk,
        logLevel: options.logLevel ?? 'info',
      },
    } satisfies ToFanOut)
  }
  for (let slot = 0; slot < Math.max(1, options.processes); slot++) start(slot)

  const onClose = (client: SseClient, reason: CloseReason) => {
    if (!catchingUp.delete(client)) return
    if (reason !== 'client-closed') metrics.dropped.inc({ reason })
    releaseUser(client.user)
    settle()
  }

  /** The ready fan-out process with the fewest streams; waits for one while they (re)start. */
  async function leastBusy(): Promise<FanOutProcess | undefined> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const ready = pool.filter((p) => p.ready && p.child.connected)
      if (ready.length > 0) return ready.reduce((a, b) => (b.streams.size < a.streams.size ? b : a))
      if (closing || Date.now() > deadline) return undefined
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  async function handOff(client: SseClient, position: Position): Promise<void> {
    // Bytes still buffered here would be lost with the socket: wait until they are out. The
    // client stays catching-up meanwhile, so it keeps holding the alerts published since.
    handingOff.set(client, position)
    await client.whenFlushed()
    const target = await leastBusy()
    handingOff.delete(client)
    if (client.closed || closing) return
    if (!target) {
      client.end('shutdown')
      return
    }
    const id = nextId++
    const { user, filterKey, ending } = client
    const held = client.pending.map(toWire)
    catchingUp.delete(client)
    const socket: Socket = client.detach()
    target.streams.set(id, user)
    target.sending.set(id, socket)
    const message: ToFanOut = {
      type: 'client',
      id,
      user,
      filterKey,
      position: [...position],
      held,
      ending: ending && {
        at: ending.at,
        reason: ending.reason,
        finalFrame: ending.finalFrame?.toString('base64'),
      },
    }
    // This process closes its own descriptor itself (the fan-out process has a copy) through
    // destroy(), so that the HTTP server forgets the connection the ordinary way. Node would
    // otherwise also enrol the child in the server's cross-process connection tracking, and a
    // server whose enrolled child has exited never emits 'close' (server.close() hangs).
    Reflect.set(socket, 'server', null)
    target.child.send(message, socket, { keepOpen: true }, (err) => {
      target.sending.delete(id)
      if (err) {
        logger.warn({ err }, 'could not hand an SSE stream to a fan-out process')
        target.streams.delete(id)
        releaseUser(user)
      }
      socket.destroy()
      settle()
    })
  }

  return {
    get clientCount() {
      return catchingUp.size + liveCount()
    },
    async ready() {
      while (!closing && !pool.every((p) => p.ready)) await new Promise((resolve) => setTimeout(resolve, 20))
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
      handOff(client, position).catch((err: unknown) => {
        logger.warn({ err }, 'SSE hand-off failed')
        client.end('replay-failed')
      })
    },
    publish(entries) {
      if (entries.length === 0) return
      for (const client of catchingUp) client.hold(entries)
      const message: ToFanOut = { type: 'publish', entries: entries.map(toWire) }
      for (const p of pool) if (p.child.connected) p.child.send(message)
    },
    async close() {
      closing = true
      clearInterval(heartbeat)
      const ended = new Promise<void>((resolve) => {
        closeWaiters.push(resolve)
        settle()
      })
      // A stream about to be handed off gets what it held from here, like any live stream.
      for (const [client, position] of handingOff) {
        const frames = heldFrames(client, position)
        if (frames.length > 0 && client.write(httpChunk(Buffer.concat(frames)), frames.length)) {
          metrics.eventsSent.inc(frames.length)
        }
      }
      handingOff.clear()
      for (const client of catchingUp) client.end('shutdown')
      // Each fan-out process delivers what was published (its channel is in order), ends its
      // streams, and reports; then it is let go.
      await Promise.all(
        pool.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (!p.child.connected) return resolve()
              p.closed = resolve
              p.child.send({ type: 'close' } satisfies ToFanOut)
            }),
        ),
      )
      for (const p of pool) if (p.child.connected) p.child.disconnect()
      await ended
    },
  }
}
