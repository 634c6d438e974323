// Client side of bench/alerts.ts: N raw HTTP/1.1 SSE connections (no EventSource, no parser
// beyond what is needed, to stay light). Each alert's `model` carries its produce time
// (`t<epoch ms with fraction>`); latency = arrival - produce, same machine clock. Protocol on
// stdio: prints {"connected": n} once all streams are open; "pause"/"resume" stop and restart
// reading on every stream (acknowledged with one line); on "report\n" from stdin prints
// {"count", "histogram"...} and exits.
import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'

const port = Number(process.env.BENCH_PORT)
const token = process.env.BENCH_TOKEN ?? ''
const clients = Number(process.env.BENCH_CLIENTS ?? 100)
const BUCKET_MS = 0.1
/** Latency is parsed on every SAMPLE_EVERY-th stream (about 1,000 streams), to keep the client light. */
const SAMPLE_EVERY = Math.max(1, Math.ceil(clients / 1_000))
const histogram = new Uint32Array(200_000) // 0.1 ms buckets up to 20 s
let count = 0
let overflow = 0
let open = 0
let failed = 0
let closedEarly = 0
let measuring = false
let cpuAtStart = process.cpuUsage()
const PATTERN = Buffer.from('"model":"t')
const request = `GET /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`
const sockets: Socket[] = []
const readBuffer = Buffer.allocUnsafe(256 * 1024)

function record(latencyMs: number): void {
  if (!measuring) return
  count++
  const bucket = Math.max(0, Math.floor(latencyMs / BUCKET_MS))
  if (bucket >= histogram.length) overflow++
  else histogram[bucket] = histogram[bucket]! + 1
}

function openOne(index: number): Promise<void> {
  return new Promise((resolve) => {
    let pending: Buffer | null = null
    let headersDone = false
    // One shared read buffer for every socket (`onread`): no allocation per read, so the client
    // stays cheap next to the server it measures. Anything kept across reads is copied.
    const socket = connect({ port, host: '127.0.0.1', onread: { buffer: readBuffer, callback: onRead } })
    sockets.push(socket)
    socket.on('connect', () => socket.write(request))
    const sampled = index % SAMPLE_EVERY === 0
    function onRead(bytes: number, shared: Uint8Array): boolean {
      // Unsampled streams are read (the server sees a real reader) but not parsed.
      if (sampled || !headersDone) onChunk(Buffer.from(shared.buffer, shared.byteOffset, bytes))
      return true
    }
    function onChunk(chunk: Buffer): void {
      const now = performance.timeOrigin + performance.now()
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
          // Keep a tail that could hold the start of a split pattern.
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
        record(now - Number(buf.toString('latin1', start, quote)))
        from = quote + 1
      }
    }
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (headersDone) {
        open--
        closedEarly++
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
process.stdout.write(
  `${JSON.stringify({ connected: open, failed, sampled: Math.ceil(clients / SAMPLE_EVERY) })}\n`,
)

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  // For the server's sender-only reference: readers that do not read are never woken up.
  if (line === 'pause' || line === 'resume') {
    for (const socket of sockets) {
      if (line === 'pause') socket.pause()
      else socket.resume()
    }
    process.stdout.write(`${JSON.stringify({ [line]: sockets.length })}\n`)
  }
  if (line === 'start') {
    measuring = true
    cpuAtStart = process.cpuUsage()
  }
  if (line === 'report') {
    measuring = false
    const percentile = (p: number) => {
      const target = Math.ceil(count * p)
      let seen = 0
      for (let i = 0; i < histogram.length; i++) {
        seen += histogram[i]!
        if (seen >= target) return (i + 1) * BUCKET_MS
      }
      return Number.POSITIVE_INFINITY
    }
    const cpu = process.cpuUsage(cpuAtStart)
    const report = {
      cpuMs: (cpu.user + cpu.system) / 1000,
      count,
      overflow,
      open,
      failed,
      closedEarly,
      p50: percentile(0.5),
      p99: percentile(0.99),
      max: 0,
    }
    for (let i = histogram.length - 1; i >= 0; i--) {
      if (histogram[i]) {
        report.max = (i + 1) * BUCKET_MS
        break
      }
    }
    process.stdout.write(`${JSON.stringify(report)}\n`)
    for (const socket of sockets) socket.destroy()
    process.exit(0)
  }
})
