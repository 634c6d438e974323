// A rolling restart of API replicas behind HAProxy under SSE clients and a producer, shared by
// test/e2e/replicas.test.ts (the real API, tens of clients, asserted) and bench/replicas.ts (the
// alerts feature alone, 1,000s of clients, a table row). Each replica in turn is stopped
// gracefully (it drains: its streams end and resume on the others) and started again on its
// port; alerts go on all along. Every client checks that it got every alert once, in partition
// order (bench/support/alert-sequence.ts); measured: per restart, how long until the last client
// whose stream ended was open again, and the alerts' latency over the whole run.
import type { Producer } from 'kafkajs'
import { partitionOf } from './alert-sequence.js'
import { benchAlert, openSseClients } from './sse-clients.js'

export interface RestartableReplica {
  name: string
  /** SIGTERM; resolves once the process has exited. */
  stop(): Promise<void>
  /** Starts it again on its port; resolves once the proxy has it back in the pool. */
  start(): Promise<void>
}

export interface RollingRestartOptions {
  /** The proxy's port, and a token every replica accepts. */
  port: number
  token: string
  clients: number
  /** Client processes (bench/alerts-client.ts). */
  procs: number
  replicas: RestartableReplica[]
  /** Connected; alert n goes to partition `partitionOf(n)` of `topic`, which has `partitions`. */
  producer: Producer
  topic: string
  partitions: number
  ratePerSecond: number
  /** The replicas' `retry:`: a client whose stream ended reconnects this long after. */
  retryMs: number
  /** How long every client may take to get the last alert once production stops. */
  settleMs?: number
}

export interface RestartResult {
  replica: string
  /** Streams the drain ended. */
  ended: number
  /** From SIGTERM until the last of them was open again (NaN when it held none). */
  lastBackMs: number
  /** From SIGTERM until the replica was back in the pool. */
  restartMs: number
}

interface Status {
  open: number
  resuming: number
  closedEarly: number
  resumed: number
  lastResumedAt: number
}

/** How long every client may take by default to have its streams back, then every alert. */
const SETTLE_MS = 20_000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const epochNow = () => performance.timeOrigin + performance.now()

export async function rollingRestart(options: RollingRestartOptions) {
  const clients = await openSseClients({
    clients: options.clients,
    procs: options.procs,
    port: options.port,
    token: options.token,
    env: { BENCH_RESUME_ON_CLOSE: String(options.retryMs) },
    checkPartitions: options.partitions,
  })
  try {
    if (clients.connected !== options.clients)
      throw new Error(`${clients.connected} of ${options.clients} streams opened`)
    const status = async () => {
      const all = await clients.all<Status>('status')
      return {
        resuming: all.reduce((a, s) => a + s.resuming, 0),
        closedEarly: all.reduce((a, s) => a + s.closedEarly, 0),
        lastResumedAt: Math.max(...all.map((s) => s.lastResumedAt)),
      }
    }
    const waitUntil = async (what: string, done: (s: Awaited<ReturnType<typeof status>>) => boolean) => {
      const deadline = performance.now() + (options.settleMs ?? SETTLE_MS)
      for (;;) {
        const s = await status()
        if (done(s)) return s
        if (performance.now() > deadline) throw new Error(`${what}: ${JSON.stringify(s)}`)
        await sleep(100)
      }
    }

    clients.start()
    let produced = 0
    let producing = true
    const production = (async () => {
      const started = performance.now()
      while (producing) {
        const wait = started + (produced * 1000) / options.ratePerSecond - performance.now()
        if (wait > 0) await sleep(wait)
        const seq = ++produced
        await options.producer.send({
          topic: options.topic,
          messages: [
            {
              key: String(seq),
              value: JSON.stringify(benchAlert(seq, epochNow())),
              partition: partitionOf(seq, options.partitions),
            },
          ],
        })
      }
    })()

    const restarts: RestartResult[] = []
    try {
      await sleep(1_000)
      for (const replica of options.replicas) {
        const before = await status()
        const stoppedAt = epochNow()
        await replica.stop()
        await replica.start()
        const restartMs = epochNow() - stoppedAt
        // Its streams ended before it exited; by the time it is back they have long resumed.
        const after = await waitUntil(`${replica.name}'s streams resumed`, (s) => s.resuming === 0)
        const ended = after.closedEarly - before.closedEarly
        restarts.push({
          replica: replica.name,
          ended,
          lastBackMs: ended > 0 ? after.lastResumedAt - stoppedAt : Number.NaN,
          restartMs,
        })
      }
      await sleep(1_000)
    } finally {
      producing = false
      await production
    }
    // A client short of alerts fails the check, which says what it missed.
    const { sequences, latency, expected, received } = await clients.checkedReport(
      produced,
      options.settleMs ?? SETTLE_MS,
    )
    return { clients: options.clients, produced, restarts, sequences, latency, expected, received }
  } finally {
    clients.kill()
  }
}

export type RollingRestartResult = Awaited<ReturnType<typeof rollingRestart>>
