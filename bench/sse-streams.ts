// The SSE-reading side shared by the benchmark clients (bench/alerts-client.ts, bench/soak-client.ts):
// raw HTTP/1.1 streams on GET /alerts, no EventSource and no parser beyond what a latency sample
// needs, so that the client stays light next to the server it measures.
import { connect, type Socket } from 'node:net'

/**
 * One shared read buffer for every socket (`onread`): no allocation per read. Anything kept
 * across reads is copied.
 */
const readBuffer = Buffer.allocUnsafe(256 * 1024)

export interface StreamOptions {
  port: number
  token: string
  /** A resume token sent as Last-Event-ID. */
  lastEventId?: string
  /**
   * Sampled streams are scanned for `pattern`; the text between it and the next `"` goes to
   * `onValue` with the arrival time of the read that completed it. Other streams are read (the
   * server sees a real reader) but not parsed.
   */
  sampled: boolean
  pattern: Buffer
  now(): number
  onValue(text: string, arrivedAt: number): void
  /** Called with every read of an open stream, sampled or not (keep it cheap). */
  onRead?(data: Buffer): void
  /** The stream answered 200 and its headers are read. */
  onOpen(): void
  /** The stream was refused, or closed before its headers. */
  onFail(): void
  /** An open stream closed. */
  onClose(): void
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n')

/** Whether a read ends with the last chunk of a chunked body (a chunk of SSE text never does). */
function endsBody(chunk: Buffer): boolean {
  const at = chunk.length - LAST_CHUNK.length
  return at >= 0 && chunk.subarray(at).equals(LAST_CHUNK) && (at === 0 || chunk[at - 1] === 10)
}

/** Opens one stream; resolves when it is open or has failed. */
export function openSseStream(options: StreamOptions): Promise<Socket> {
  const { pattern } = options
  const resume = options.lastEventId ? `Last-Event-ID: ${options.lastEventId}\r\n` : ''
  const request = `GET /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${options.token}\r\nAccept: text/event-stream\r\n${resume}\r\n`
  return new Promise((resolve) => {
    let pending: Buffer | null = null
    let headersDone = false
    const socket = connect({
      port: options.port,
      host: '127.0.0.1',
      onread: { buffer: readBuffer, callback: onRead },
    })
    socket.on('connect', () => socket.write(request))
    function onRead(bytes: number, shared: Uint8Array): boolean {
      const chunk = Buffer.from(shared.buffer, shared.byteOffset, bytes)
      if (options.sampled || !headersDone) onChunk(chunk)
      else options.onRead?.(chunk)
      // A server that ends the stream (a replica draining) ends the response; a proxy keeps the
      // connection open for the next request. EventSource reconnects at the end of the body: so
      // does this stream, by closing.
      if (headersDone && endsBody(chunk)) socket.destroy()
      return true
    }
    function onChunk(chunk: Buffer): void {
      const now = options.now()
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk
      pending = null
      if (!headersDone) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) {
          pending = Buffer.from(buf)
          return
        }
        if (!buf.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) {
          socket.destroy()
          return
        }
        headersDone = true
        options.onOpen()
        resolve(socket)
        buf = buf.subarray(end + 4)
        options.onRead?.(buf)
      } else {
        // Not `buf`: a tail kept for a split pattern was handed to onRead with its own read.
        options.onRead?.(chunk)
      }
      if (!options.sampled) return
      let from = 0
      for (;;) {
        const at = buf.indexOf(pattern, from)
        if (at < 0) {
          // Keep a tail that could hold the start of a split pattern.
          if (buf.length - from > 0)
            pending = Buffer.from(buf.subarray(Math.max(from, buf.length - pattern.length)))
          return
        }
        const start = at + pattern.length
        const quote = buf.indexOf(34, start)
        if (quote < 0) {
          pending = Buffer.from(buf.subarray(at))
          return
        }
        options.onValue(buf.toString('latin1', start, quote), now)
        from = quote + 1
      }
    }
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (headersDone) options.onClose()
      else {
        options.onFail()
        resolve(socket)
      }
    })
  })
}

/** Latency histogram in fixed buckets, mergeable across processes. */
export class Histogram {
  counts: Uint32Array
  count = 0
  overflow = 0
  constructor(
    readonly bucketMs: number,
    buckets: number,
  ) {
    this.counts = new Uint32Array(buckets)
  }

  record(ms: number): void {
    this.count++
    const bucket = Math.max(0, Math.floor(ms / this.bucketMs))
    if (bucket >= this.counts.length) this.overflow++
    else this.counts[bucket] = this.counts[bucket]! + 1
  }

  /** Upper bound (ms) of the bucket holding quantile p; Infinity when it is past the last one. */
  percentile(p: number): number {
    const target = Math.ceil(this.count * p)
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      if (seen >= target) return (i + 1) * this.bucketMs
    }
    return Number.POSITIVE_INFINITY
  }

  max(): number {
    if (this.overflow > 0) return Number.POSITIVE_INFINITY
    for (let i = this.counts.length - 1; i >= 0; i--) if (this.counts[i]) return (i + 1) * this.bucketMs
    return 0
  }

  reset(): void {
    this.counts = new Uint32Array(this.counts.length)
    this.count = 0
    this.overflow = 0
  }

  /** Non-empty buckets as [index, count] pairs, for a report on stdout. */
  sparse(): [number, number][] {
    const out: [number, number][] = []
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) out.push([i, this.counts[i]!])
    return out
  }

  add(sparse: [number, number][], overflow: number): void {
    for (const [index, n] of sparse) {
      this.counts[index] = this.counts[index]! + n
      this.count += n
    }
    this.overflow += overflow
    this.count += overflow
  }
}
