// Client side of bench/soak.ts: N raw HTTP/1.1 SSE streams on GET /alerts. Latency of an alert is
// its arrival minus its `detectedAt` (the detection's Kafka timestamp, set when the producer sent
// it; same machine clock). Protocol on stdio: prints {"connected", "failed"} once every stream is
// open; on "report" prints the latency quantiles and counts since the previous report (then
// starts a new interval); on "stop" closes every stream and exits.
import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'

const port = Number(process.env.SOAK_PORT)
const token = process.env.SOAK_TOKEN ?? ''
const clients = Number(process.env.SOAK_CLIENTS ?? 100)
const BUCKET_MS = 1
/** Latency is parsed on every SAMPLE_EVERY-th stream (about 200 streams), to keep the client light. */
const SAMPLE_EVERY = Math.max(1, Math.ceil(clients / 200))
let histogram = new Uint32Array(60_000) // 1 ms buckets up to 60 s
let count = 0
let overflow = 0
let open = 0
let failed = 0
let dropped = 0
const PATTERN = Buffer.from('"detectedAt":"')
const request = `GET /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`
const sockets: Socket[] = []
const readBuffer = Buffer.allocUnsafe(256 * 1024)
let stopping = false

function record(latencyMs: number): void {
  count++
  const bucket = Math.max(0, Math.floor(latencyMs / BUCKET_MS))
  if (bucket >= histogram.length) overflow++
  else histogram[bucket] = histogram[bucket]! + 1
}

function openOne(index: number): Promise<void> {
  return new Promise((resolve) => {
    let pending: Buffer | null = null
    let headersDone = false
    const socket = connect({ port, host: '127.0.0.1', onread: { buffer: readBuffer, callback: onRead } })
    sockets.push(socket)
    socket.on('connect', () => socket.write(request))
    const sampled = index % SAMPLE_EVERY === 0
    function onRead(bytes: number, shared: Uint8Array): boolean {
      if (sampled || !headersDone) onChunk(Buffer.from(shared.buffer, shared.byteOffset, bytes))
      return true
    }
    function onChunk(chunk: Buffer): void {
      const now = Date.now()
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk
      pending = null
      if (!headersDone) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) {
          pending = Buffer.from(buf)
          return
        }
        if (!buf.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) {
          failed++
          socket.destroy()
          resolve()
          return
        }
        headersDone = true
        open++
        resolve()
        buf = buf.subarray(end + 4)
      }
      let from = 0
      for (;;) {
        const at = buf.indexOf(PATTERN, from)
        if (at < 0) {
          if (buf.length - from > 0)
            pending = Buffer.from(buf.subarray(Math.max(from, buf.length - PATTERN.length)))
          return
        }
        const start = at + PATTERN.length
        const quote = buf.indexOf(34, start)
        if (quote < 0) {
          pending = Buffer.from(buf.subarray(at))
          return
        }
        record(now - Date.parse(buf.toString('latin1', start, quote)))
        from = quote + 1
      }
    }
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (headersDone) {
        open--
        if (!stopping) dropped++
      } else {
        failed++
        resolve()
      }
    })
  })
}

for (let i = 0; i < clients; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, clients - i) }, (_, j) => openOne(i + j)))
}
process.stdout.write(`${JSON.stringify({ connected: open, failed })}\n`)

const percentile = (p: number) => {
  const target = Math.ceil(count * p)
  let seen = 0
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!
    if (seen >= target) return (i + 1) * BUCKET_MS
  }
  return Number.POSITIVE_INFINITY
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'report') {
    const report = { count, overflow, open, failed, dropped, p50: percentile(0.5), p99: percentile(0.99) }
    histogram = new Uint32Array(histogram.length)
    count = 0
    overflow = 0
    process.stdout.write(`${JSON.stringify(report)}\n`)
  }
  if (line === 'stop') {
    stopping = true
    for (const socket of sockets) socket.destroy()
    process.exit(0)
  }
})
