/**
 * Every byte of the `text/event-stream` is built here: the SSE events and comments, and the HTTP
 * chunked framing they travel in (streams are written to the raw socket after `reply.hijack()`).
 */

/**
 * One event. `data` must hold no line break: JSON.stringify escapes \n and \r inside strings, and
 * U+2028/U+2029 are not SSE line terminators, so one JSON value is always one `data:` line.
 */
export function sseEvent(event: string, data: string, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`
}

/** How long EventSource waits before it reconnects. */
export function sseRetry(ms: number): string {
  return `retry: ${ms}\n\n`
}

const CRLF = Buffer.from('\r\n')

/** One HTTP/1.1 chunk carrying `payload`. */
export function httpChunk(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF])
}

/** A comment line: keeps proxies and clients from timing out an idle stream. */
export const HEARTBEAT_CHUNK = httpChunk(':\n\n')
/** Ends the chunked body. */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n')
export const TOKEN_EXPIRED_CHUNK = httpChunk(sseEvent('token-expired', '{}'))
