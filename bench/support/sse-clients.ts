// The client side of the GET /alerts benchmarks (bench/alerts.ts, bench/replicas.ts): the processes
// of raw-socket SSE clients (bench/alerts-client.ts) that hold the streams, the alerts the
// benchmarks produce, and the latency read back from the clients.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import { TS_NODE_FLAGS } from '../../test/support/node-flags.js'
import { Histogram } from '../sse-streams.js'
import { mergeSequences, type SequenceResult } from './alert-sequence.js'

const root = new URL('../..', import.meta.url).pathname
/** Latency is parsed on about this many streams in all, to keep the clients light. */
export const SAMPLED_STREAMS = 1_000

/**
 * A TypeScript entry point of the repo in a child process, with the open-files limit raised to the
 * hard limit (a stream is a socket), at scheduling priority `nice` (negative ones need root).
 * BENCH_NODE_FLAGS: extra node flags.
 */
export function spawnTs(file: string, env: Record<string, string>, { nice = 0 } = {}): ChildProcess {
  const niced = nice === 0 ? '' : `nice -n ${nice} `
  const flags = process.env.BENCH_NODE_FLAGS ?? ''
  const command = `ulimit -n "$(ulimit -Hn)"; exec ${niced}node ${flags} ${TS_NODE_FLAGS.join(' ')} ${file}`
  return spawn('bash', ['-c', command], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
}

export function nextLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    const exited = (code: number | null) => reject(new Error(`child exited with ${code}`))
    lines.once('line', (line) => {
      lines.close()
      child.off('exit', exited)
      resolve(line)
    })
    child.once('exit', exited)
  })
}

/** An alert as the indexer writes it, its `model` carrying its send time for the clients to read. */
export function benchAlert(seq: number, sentAt: number) {
  return {
    id: `bench-${seq}-${randomUUID()}`,
    detectedAt: new Date().toISOString(),
    year: 2015,
    make: 'Toyota',
    model: `t${sentAt.toFixed(3)}`,
    category: 'SUV',
    reason: 'category matches SUV',
    // With no rule but the built-in one: the case every reader shares.
    rules: [
      { id: '00000000-0000-4000-8000-000000000001', version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' },
    ],
  }
}

/** What every client process reports (bench/alerts-client.ts), besides what a benchmark reads. */
export interface ClientReport {
  overflow: number
  histogram: [number, number][]
  closedEarly: number
}

export interface SseClientsOptions {
  /** Streams in all, spread over `procs` processes. */
  clients: number
  procs: number
  port: number
  token: string
  /** Churn settings of bench/alerts-client.ts (BENCH_RECONNECT_FRACTION, ...). */
  env?: Record<string, string>
  nice?: number
  /**
   * Every stream checks that it gets every alert once, in partition order, alert n produced to
   * partition `partitionOf(n, checkPartitions)` (bench/support/alert-sequence.ts): `checkedReport`.
   */
  checkPartitions?: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Opens `clients` streams on GET /alerts from client processes and resolves once all are open.
 * The processes wait for `start()` before they measure.
 */
export async function openSseClients(options: SseClientsOptions) {
  const procs = Math.max(1, Math.min(options.procs, options.clients))
  const sampleEvery = Math.max(1, Math.ceil(options.clients / SAMPLED_STREAMS))
  const opening = Date.now()
  const children: ChildProcess[] = []
  for (let i = 0; i < procs; i++) {
    const streams = Math.floor(options.clients / procs) + (i < options.clients % procs ? 1 : 0)
    const env = {
      BENCH_CLIENTS: String(streams),
      BENCH_SAMPLE_EVERY: String(sampleEvery),
      BENCH_PORT: String(options.port),
      BENCH_TOKEN: options.token,
      ...(options.checkPartitions ? { BENCH_CHECK_PARTITIONS: String(options.checkPartitions) } : {}),
      ...options.env,
    }
    children.push(spawnTs('bench/alerts-client.ts', env, { nice: options.nice }))
  }
  const kill = () => {
    for (const child of children) child.kill()
  }
  /** Sends `command` to every process (none: just wait) and resolves to each one's answer line. */
  const all = <T>(command: string | undefined) =>
    Promise.all(
      children.map((child) => {
        const line = nextLine(child)
        if (command) child.stdin!.write(`${command}\n`)
        return line.then((text) => JSON.parse(text) as T)
      }),
    )
  let opened: { connected: number; sampled: number; stalled?: number }[]
  try {
    opened = await all(undefined)
  } catch (err) {
    kill()
    throw err
  }
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0)
  /**
   * Every process's report, and the latency of each sampled stream's `produced` alerts. An alert
   * not there by now counts as slower than any that arrived: a server that falls behind must not
   * look fast because its slowest alerts are missing.
   */
  async function report<R extends ClientReport>(produced: number) {
    const reports = await all<R>('report')
    const latency = new Histogram(0.1, 1_200_000)
    for (const one of reports) latency.add(one.histogram, one.overflow)
    const expected = sum(opened.map((o) => o.sampled)) * produced
    const received = latency.count
    latency.add([], Math.max(0, expected - received))
    return { reports, latency, expected, received }
  }
  return {
    procs,
    openMs: Date.now() - opening,
    connected: sum(opened.map((o) => o.connected)),
    sampled: sum(opened.map((o) => o.sampled)),
    stalled: sum(opened.map((o) => o.stalled ?? 0)),
    all,
    start() {
      for (const child of children) child.stdin!.write('start\n')
    },
    report,
    /**
     * With `checkPartitions`, once alerts 1 to `produced` have been sent: waits until every stream
     * has each of them, or `settleMs` have passed, then `report` with every stream's sequence
     * check as one (a stream still short of alerts shows there, with what it missed).
     */
    async checkedReport<R extends ClientReport>(produced: number, settleMs: number) {
      const deadline = performance.now() + settleMs
      for (;;) {
        const states = await all<{ minDistinct: number }>('status')
        if (states.every((s) => s.minDistinct >= produced) || performance.now() > deadline) break
        await sleep(100)
      }
      const result = await report<R & { sequences: SequenceResult[] }>(produced)
      const sequences = mergeSequences(
        result.reports.flatMap((r) => r.sequences),
        produced,
      )
      return { ...result, sequences }
    },
    kill,
  }
}

export type SseClients = Awaited<ReturnType<typeof openSseClients>>
