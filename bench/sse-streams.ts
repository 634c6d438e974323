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
  /** Called with the body's bytes as they arrive, sampled or not, without chunk framing (keep it cheap). */
  onRead?(data: Buffer): void
  /** The stream answered 200 and its headers are read. */
  onOpen(): void
  /** The stream was refused, or closed before its headers. */
  onFail(): void
  /** An open stream closed. */
  onClose(): void
}

/**
 * The body of a chunked HTTP/1.1 response, read by read: `read` hands `emit` the data without the
 * chunk framing, and says when the last chunk has come. The servers write one chunk per write, but
 * a proxy re-chunks the stream as its reads fall: a size line can land inside an event, where a
 * parser of the raw bytes would miss or misread it.
 */
export function createChunkedBody() {
  /** Data bytes of the current chunk still to come, then the CRLF after them. */
  let left = 0
  let crlf = 0
  /** A size line split across reads. */
  let sizeLine = ''
  return {
    read(chunk: Buffer, emit: (data: Buffer) => void): boolean {
      let at = 0
      while (at < chunk.length) {
        if (left > 0) {
          const n = Math.min(left, chunk.length - at)
          emit(chunk.subarray(at, at + n))
          left -= n
          at += n
          if (left === 0) crlf = 2
        } else if (crlf > 0) {
          const n = Math.min(crlf, chunk.length - at)
          crlf -= n
          at += n
        } else {
          const eol = chunk.indexOf(10, at)
          sizeLine += chunk.toString('latin1', at, eol < 0 ? chunk.length : eol)
          if (eol < 0) return false
          at = eol + 1
          // Hex digits; parseInt stops at the CR, or at a chunk extension.
          left = Number.parseInt(sizeLine, 16)
          sizeLine = ''
          // The last chunk (size 0), or framing this reader cannot follow: the body ends here.
          if (!(left > 0)) {
            left = 0
            return true
          }
        }
      }
      return false
    },
  }
}

/** Opens one stream; resolves when it is open or has failed. */
export function openSseStream(options: StreamOptions): Promise<Socket> {
  const { pattern } = options
  const resume = options.lastEventId ? `Last-Event-ID: ${options.lastEventId}\r\n` : ''
  const request = `GET /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${options.token}\r\nAccept: text/event-stream\r\n${resume}\r\n`
  return new Promise((resolve) => {
    /** The response head while it is split across reads. */
    let head: Buffer | null = null
    let headersDone = false
    /** Without chunked framing, the body is every byte until the connection closes. */
    let body: ReturnType<typeof createChunkedBody> | undefined
    /** A tail of the body kept for a pattern split across reads. */
    let pending: Buffer | null = null
    const socket = connect({
      port: options.port,
      host: '127.0.0.1',
      onread: { buffer: readBuffer, callback: onRead },
    })
    socket.on('connect', () => socket.write(request))
    function onRead(bytes: number, shared: Uint8Array): boolean {
      let chunk = Buffer.from(shared.buffer, shared.byteOffset, bytes)
      if (!headersDone) {
        const buf = head ? Buffer.concat([head, chunk]) : chunk
        head = null
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) {
          head = Buffer.from(buf)
          return true
        }
        const text = buf.toString('latin1', 0, end)
        if (!text.startsWith('HTTP/1.1 200')) {
          socket.destroy()
          return true
        }
        headersDone = true
        if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(text)) body = createChunkedBody()
        options.onOpen()
        resolve(socket)
        chunk = buf.subarray(end + 4)
      }
      const now = options.now()
      if (!body) data(chunk, now)
      // A server that ends the stream (a replica draining) ends the response; a proxy keeps the
      // connection open for the next request. EventSource reconnects at the end of the body: so
      // does this stream, by closing.
      else if (body.read(chunk, (part) => data(part, now))) socket.destroy()
      return true
    }
    function data(part: Buffer, now: number): void {
      options.onRead?.(part)
      if (!options.sampled) return
      const buf = pending ? Buffer.concat([pending, part]) : part
      pending = null
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
