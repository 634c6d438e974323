// Client side of bench/alerts.ts: raw HTTP/1.1 SSE streams on GET /alerts (bench/sse-streams.ts).
// The parent runs several of these processes, so that the client is not the limit. Each alert's
// `model` carries its produce time (`t<epoch ms with fraction>`); latency = arrival - produce,
// same machine clock. Only every BENCH_SAMPLE_EVERY-th stream is parsed.
//
// Churn (from "start" on): every second BENCH_RECONNECT_FRACTION of the streams reconnect with
// Last-Event-ID (their alerts while away arrive by replay, and count with their full latency);
// BENCH_STALL_FRACTION of the streams stop reading (they leave the sample), and the server should
// drop them. BENCH_RESUME_ON_CLOSE=<ms>: a stream the server closes reconnects with Last-Event-ID
// that long after, as EventSource does after its `retry:` delay (a replica that died).
// BENCH_CHECK_PARTITIONS=<n>: every stream checks that it gets every alert once, in partition
// order (bench/support/alert-sequence.ts).
//
// Protocol on stdio: prints {"connected", "failed", "sampled"} once all streams are open;
// "start" starts measuring; "pause"/"resume" stop and restart reading on every stream
// (acknowledged with one line); "status" prints the streams' state (open, resuming, ...);
// "report" prints the histogram, CPU and loop delay, then exits.
import type { Socket } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { Histogram, openSseStream } from './sse-streams.js'
import { createSequenceCheck } from './support/alert-sequence.js'

const port = Number(process.env.BENCH_PORT)
const token = process.env.BENCH_TOKEN ?? ''
const clients = Number(process.env.BENCH_CLIENTS ?? 100)
const SAMPLE_EVERY = Number(process.env.BENCH_SAMPLE_EVERY ?? 1)
const RECONNECT = Number(process.env.BENCH_RECONNECT_FRACTION ?? 0)
const STALL = Number(process.env.BENCH_STALL_FRACTION ?? 0)
const RESUME_AFTER_MS = process.env.BENCH_RESUME_ON_CLOSE
  ? Number(process.env.BENCH_RESUME_ON_CLOSE)
  : undefined
const CHECK_PARTITIONS = Number(process.env.BENCH_CHECK_PARTITIONS ?? 0)
const TRACK_IDS = RECONNECT > 0 || RESUME_AFTER_MS !== undefined || CHECK_PARTITIONS > 0
/** Every STALL_EVERY-th stream, off the sampling grid, stops reading. */
const STALL_EVERY = STALL > 0 ? Math.round(1 / STALL) : 0
const histogram = new Histogram(0.1, 1_200_000) // 0.1 ms buckets up to 120 s
const PATTERN = Buffer.from('"model":"t')
const now = () => performance.timeOrigin + performance.now()
let measuring = false
let open = 0
let failed = 0
let closedEarly = 0
let reconnects = 0
let resumed = 0
/** When the last stream closed by the server was open again (epoch ms). */
let lastResumedAt = 0
let cpuAtStart = process.cpuUsage()
let startedAt = performance.now()
// How late the client's own event loop runs: a ready socket waits about this long to be read.
const loopDelay = monitorEventLoopDelay({ resolution: 1 })
loopDelay.enable()

interface Stream {
  index: number
  sampled: boolean
  stalled: boolean
  socket: Socket | undefined
  /** Resume token of the last complete event read (tracked only when streams reconnect). */
  lastId: string | undefined
  leaving: boolean
  /** Closed by the server, reconnecting. */
  resuming: boolean
  sequence: ReturnType<typeof createSequenceCheck> | undefined
}

/** The id of the last complete event in `data`, if any (an `id:` line only ever holds a token). */
function lastCompleteId(data: Buffer): string | undefined {
  const end = data.lastIndexOf('\n\n')
  if (end < 0) return undefined
  const at = data.lastIndexOf('id: ', end)
  if (at < 0) return undefined
  const eol = data.indexOf(10, at)
  return data.toString('latin1', at + 4, eol)
}

async function connectStream(stream: Stream): Promise<void> {
  stream.leaving = false
  stream.socket = await openSseStream({
    port,
    token,
    lastEventId: stream.lastId,
    sampled: stream.sampled,
    pattern: PATTERN,
    now,
    onValue: (text, arrivedAt) => {
      if (measuring && !stream.stalled) histogram.record(arrivedAt - Number(text))
    },
    onRead: TRACK_IDS
      ? (data) => {
          const id = lastCompleteId(data)
          if (id) stream.lastId = id
          stream.sequence?.read(data)
        }
      : undefined,
    onOpen: () => {
      open++
      if (stream.resuming) {
        stream.resuming = false
        resumed++
        lastResumedAt = now()
      }
    },
    onFail: () => {
      failed++
      if (stream.resuming) setTimeout(() => void connectStream(stream), RESUME_AFTER_MS)
    },
    onClose: () => {
      open--
      stream.sequence?.closed()
      if (stream.leaving) return
      closedEarly++
      if (RESUME_AFTER_MS !== undefined) {
        stream.resuming = true
        setTimeout(() => void connectStream(stream), RESUME_AFTER_MS)
      }
    },
  })
}

const streams: Stream[] = Array.from({ length: clients }, (_, index) => ({
  index,
  sampled: index % SAMPLE_EVERY === 0,
  // Off the sampling grid when there is one; with every stream sampled, stalled ones drop out of it.
  stalled:
    STALL_EVERY > 0 &&
    index % STALL_EVERY === STALL_EVERY - 1 &&
    (SAMPLE_EVERY === 1 || index % SAMPLE_EVERY !== 0),
  socket: undefined,
  lastId: undefined,
  leaving: false,
  resuming: false,
  sequence: CHECK_PARTITIONS > 0 ? createSequenceCheck(CHECK_PARTITIONS) : undefined,
}))
for (let i = 0; i < clients; i += 200) await Promise.all(streams.slice(i, i + 200).map(connectStream))
process.stdout.write(
  `${JSON.stringify({ connected: open, failed, sampled: streams.filter((s) => s.sampled && !s.stalled).length, stalled: streams.filter((s) => s.stalled).length })}\n`,
)

function churn(): void {
  const movable = streams.filter((s) => !s.stalled && !s.leaving && s.socket && !s.socket.destroyed)
  const count = Math.round(streams.length * RECONNECT)
  for (let i = 0; i < count && movable.length > 0; i++) {
    const [stream] = movable.splice(Math.floor(Math.random() * movable.length), 1)
    stream!.leaving = true
    stream!.socket!.destroy()
    reconnects++
    void connectStream(stream!)
  }
}
let churnTimer: NodeJS.Timeout | undefined

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  // For the server's sender-only reference: readers that do not read are never woken up.
  if (line === 'pause' || line === 'resume') {
    for (const { socket } of streams) {
      if (line === 'pause') socket?.pause()
      else socket?.resume()
    }
    process.stdout.write(`${JSON.stringify({ [line]: streams.length })}\n`)
  }
  if (line === 'status') {
    // Alerts each stream got once at least (its sequence check's), the fewest of any stream.
    const distinct = streams.map((s) => {
      const result = s.sequence?.result()
      return result ? result.received - result.duplicates : 0
    })
    const status = {
      open,
      resuming: streams.filter((s) => s.resuming).length,
      closedEarly,
      resumed,
      lastResumedAt,
      minDistinct: Math.min(...distinct),
    }
    process.stdout.write(`${JSON.stringify(status)}\n`)
  }
  if (line === 'start') {
    measuring = true
    cpuAtStart = process.cpuUsage()
    startedAt = performance.now()
    loopDelay.reset()
    for (const stream of streams) if (stream.stalled) stream.socket?.pause()
    if (RECONNECT > 0) churnTimer = setInterval(churn, 1_000)
  }
  if (line === 'report') {
    measuring = false
    clearInterval(churnTimer)
    const cpu = process.cpuUsage(cpuAtStart)
    const report = {
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: performance.now() - startedAt,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
      count: histogram.count,
      overflow: histogram.overflow,
      histogram: histogram.sparse(),
      open,
      failed,
      closedEarly,
      reconnects,
      resumed,
      lastResumedAt,
      sequences: CHECK_PARTITIONS > 0 ? streams.map((s) => s.sequence!.result()) : undefined,
    }
    for (const { socket } of streams) socket?.destroy()
    // stdout is a pipe (asynchronous): exit only once the report is out.
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0))
  }
})
