// Client side of bench/soak.ts: N raw HTTP/1.1 SSE streams on GET /alerts. Latency of an alert is
// its arrival minus its `detectedAt` (the detection's Kafka timestamp, set when the producer sent
// it; same machine clock). Protocol on stdio: prints {"connected", "failed"} once every stream is
// open; on "report" prints the latency quantiles and counts since the previous report (then
// starts a new interval); on "stop" closes every stream and exits.
import type { Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { Histogram, openSseStream } from './sse-streams.js'

const port = Number(process.env.SOAK_PORT)
const token = process.env.SOAK_TOKEN ?? ''
const clients = Number(process.env.SOAK_CLIENTS ?? 100)
/** Latency is parsed on every SAMPLE_EVERY-th stream (about 200 streams), to keep the client light. */
const SAMPLE_EVERY = Math.max(1, Math.ceil(clients / 200))
const histogram = new Histogram(1, 60_000) // 1 ms buckets up to 60 s
let open = 0
let failed = 0
let dropped = 0
const PATTERN = Buffer.from('"detectedAt":"')
const sockets: Socket[] = []
let stopping = false

function openOne(index: number): Promise<void> {
  return openSseStream({
    port,
    token,
    sampled: index % SAMPLE_EVERY === 0,
    pattern: PATTERN,
    now: Date.now,
    onValue: (text, arrivedAt) => histogram.record(arrivedAt - Date.parse(text)),
    onOpen: () => open++,
    onFail: () => failed++,
    onClose: () => {
      open--
      if (!stopping) dropped++
    },
  }).then((socket) => void sockets.push(socket))
}

for (let i = 0; i < clients; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, clients - i) }, (_, j) => openOne(i + j)))
}
process.stdout.write(`${JSON.stringify({ connected: open, failed })}\n`)

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'report') {
    const report = {
      count: histogram.count,
      overflow: histogram.overflow,
      open,
      failed,
      dropped,
      p50: histogram.percentile(0.5),
      p99: histogram.percentile(0.99),
    }
    histogram.reset()
    process.stdout.write(`${JSON.stringify(report)}\n`)
  }
  if (line === 'stop') {
    stopping = true
    for (const socket of sockets) socket.destroy()
    process.exit(0)
  }
})
