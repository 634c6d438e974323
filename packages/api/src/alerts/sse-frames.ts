import type { VisibleAlert } from '@intellisite/alert-rules'
import { encodeResumeToken, type Position } from './resume-token.js'

/**
 * Every byte of the `text/event-stream` is built here: the SSE events and comments, the resume
 * token each event carries as its `id` (encoded nowhere else), and the HTTP chunked framing they
 * travel in (streams are written to the raw socket after `reply.hijack()`).
 */

/**
 * One event. `data` must hold no line break: JSON.stringify escapes \n and \r inside strings, and
 * U+2028/U+2029 are not SSE line terminators, so one JSON value is always one `data:` line.
 */
function sseEvent(event: string, data: string, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`
}

/**
 * An alert as one reader sees it (only `alertForReader`'s output may be framed), with the id of
 * `position`: where a stream stands once it has this alert.
 */
export function alertFrame(position: Position, alert: VisibleAlert): Buffer {
  return Buffer.from(sseEvent('alert', JSON.stringify(alert), encodeResumeToken(position)))
}

/** The stream's position is no longer retained: it restarts at `restartFrom`, the id of the event. */
export function resetFrame(restartFrom: Position): Buffer {
  const token = encodeResumeToken(restartFrom)
  return Buffer.from(
    sseEvent('reset', JSON.stringify({ reason: 'position-not-retained', restartFrom: token }), token),
  )
}

const CRLF = Buffer.from('\r\n')

/** One HTTP/1.1 chunk carrying `payload`. */
function httpChunk(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF])
}

/** One HTTP/1.1 chunk carrying `frames`, in order: one socket write for all of them. */
export function sseChunk(frames: readonly Buffer[]): Buffer {
  return httpChunk(frames.length === 1 ? frames[0]! : Buffer.concat(frames))
}

/** How long EventSource waits before it reconnects. */
export function retryChunk(ms: number): Buffer {
  return httpChunk(`retry: ${ms}\n\n`)
}

/** A comment line: keeps proxies and clients from timing out an idle stream. */
export const HEARTBEAT_CHUNK = httpChunk(':\n\n')
/** Ends the chunked body. */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n')
export const TOKEN_EXPIRED_CHUNK = httpChunk(sseEvent('token-expired', '{}'))
