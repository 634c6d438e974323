import type { Socket } from 'node:net'
import type { AlertEntry } from './alert-entry.js'
import type { StreamReader } from './alert-reader.js'
import { HEARTBEAT_CHUNK, LAST_CHUNK, sseChunk } from './sse-frames.js'

export type CloseReason =
  | 'client-closed'
  | 'slow-client'
  | 'lifetime'
  | 'token-expired'
  | 'shutdown'
  | 'replay-failed'

export interface SseClientOptions {
  socket: Socket
  /** Who reads and what they selected: every alert this client is sent goes through it. */
  reader: StreamReader
  maxQueueFrames: number
  maxQueueBytes: number
  onClose(client: SseClient, reason: CloseReason): void
}

/**
 * One SSE connection on a hijacked socket. Writes go straight to the socket while it accepts
 * them; once the kernel and Node buffers are full (`writableNeedDrain`) frames wait in a bounded
 * queue, and a client whose queue overflows is disconnected rather than allowed to grow memory or
 * hold anyone else back (it resumes with Last-Event-ID). Frames are shared Buffers, so a queued
 * frame costs a reference, but the byte bound still caps what a slow client can keep alive.
 */
export class SseClient {
  readonly user: string
  readonly reader: StreamReader
  state: 'catching-up' | 'live' | 'closed' = 'catching-up'
  /** Live entries that arrived while the client was replaying; sent when it switches to live. */
  pending: AlertEntry[] = []
  private readonly socket: Socket
  private readonly options: SseClientOptions
  private queue: Buffer[] = []
  private queuedBytes = 0
  private queuedFrames = 0
  private closeReason: CloseReason = 'client-closed'
  private timer: NodeJS.Timeout | undefined
  private drainWaiters: (() => void)[] = []
  private released = false
  private wroteSinceHeartbeat = false

  constructor(options: SseClientOptions) {
    this.options = options
    this.socket = options.socket
    this.reader = options.reader
    this.user = options.reader.userId
    this.socket.on('drain', () => this.onDrain())
    this.socket.once('close', () => this.onSocketClose())
    this.socket.on('error', () => {
      // 'close' follows; a reset by the peer is an ordinary disconnect.
    })
    // A client sends nothing after its request: its end of the stream means it has gone. Reading
    // on (and discarding) is what lets the end be seen.
    this.socket.once('end', () => this.destroy('client-closed'))
    this.socket.resume()
    // The peer may have gone while the request was being authenticated.
    if (this.socket.destroyed) process.nextTick(() => this.onSocketClose())
  }

  get closed(): boolean {
    return this.state === 'closed'
  }

  /** Ends the stream at `at` (epoch ms) with `reason`, whichever deadline comes first. */
  closeAt(at: number, reason: CloseReason, finalFrame?: Buffer): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.end(reason, finalFrame), Math.max(0, at - Date.now()))
    this.timer.unref()
  }

  /** Live path: `frames` in one write; false when there were none or the client had to be dropped. */
  send(frames: readonly Buffer[]): boolean {
    return frames.length > 0 && this.write(sseChunk(frames), frames.length)
  }

  /**
   * The same for a chunk framed once and shared by many clients (`sseChunk` of `frames` frames):
   * false when the client had to be dropped.
   */
  write(chunk: Buffer, frames: number): boolean {
    if (this.state === 'closed') return false
    this.wroteSinceHeartbeat = true
    if (this.queue.length === 0 && !this.socket.writableNeedDrain) {
      this.socket.write(chunk)
      return true
    }
    this.queue.push(chunk)
    this.queuedBytes += chunk.length
    this.queuedFrames += frames
    if (this.queuedFrames > this.options.maxQueueFrames || this.queuedBytes > this.options.maxQueueBytes) {
      this.destroy('slow-client')
      return false
    }
    return true
  }

  /** Adds live entries for this reader while replaying; the same bounds apply. */
  hold(entries: readonly AlertEntry[]): void {
    for (const entry of entries) {
      if (this.reader.view(entry.alert, entry) !== null) this.pending.push(entry)
    }
    if (this.pending.length > this.options.maxQueueFrames) this.destroy('slow-client')
  }

  /** Replay path: resolves once the socket can take more, so a replay never outruns its client. */
  async sendAndWait(frames: readonly Buffer[]): Promise<void> {
    if (this.state === 'closed' || frames.length === 0) return
    const chunk = sseChunk(frames)
    if (this.queue.length === 0 && !this.socket.writableNeedDrain) {
      if (this.socket.write(chunk)) return
    } else {
      // Behind frames already queued (order matters); the replay waits, so this cannot grow.
      this.queue.push(chunk)
      this.queuedBytes += chunk.length
    }
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve))
  }

  /**
   * Called every heartbeat interval: writes a comment only if nothing else was sent since the
   * last call, so streams that carry alerts cost no extra syscalls (a sweep of heartbeats over
   * 10k clients would block the event loop for about as long as an alert sweep).
   */
  heartbeat(): void {
    if (this.wroteSinceHeartbeat) {
      this.wroteSinceHeartbeat = false
      return
    }
    if (this.state !== 'closed' && this.queue.length === 0 && !this.socket.writableNeedDrain) {
      this.socket.write(HEARTBEAT_CHUNK)
    }
  }

  /** Graceful end: whatever is queued is flushed first, then FIN; forced after a grace period. */
  end(reason: CloseReason, finalFrame?: Buffer): void {
    if (this.state === 'closed') return
    this.closeReason = reason
    this.state = 'closed'
    if (finalFrame) this.queue.push(finalFrame)
    const rest = this.queue
    this.queue = []
    for (const chunk of rest) this.socket.write(chunk)
    // Once flushed, close outright: an HTTP client may keep a finished response's socket open
    // for keep-alive, and server.close() would wait for it.
    this.socket.end(LAST_CHUNK, () => this.socket.destroy())
    setTimeout(() => this.socket.destroy(), 2_000).unref()
  }

  destroy(reason: CloseReason): void {
    if (this.socket.destroyed) return
    if (this.state !== 'closed') this.closeReason = reason
    this.state = 'closed'
    this.queue = []
    this.socket.destroy()
  }

  private onDrain(): void {
    if (this.queue.length > 0 && this.state !== 'closed') {
      const chunk = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queuedBytes)
      this.queue = []
      this.queuedBytes = 0
      this.queuedFrames = 0
      // If this fills the buffers again, waiters resume at the next 'drain'.
      if (!this.socket.write(chunk)) return
    }
    this.releaseWaiters()
  }

  private releaseWaiters(): void {
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const resolve of waiters) resolve()
  }

  private onSocketClose(): void {
    if (this.released) return
    this.released = true
    this.state = 'closed'
    clearTimeout(this.timer)
    this.queue = []
    this.pending = []
    this.releaseWaiters()
    this.options.onClose(this, this.closeReason)
  }
}
