import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ErrorCode } from '@intellisite/common'
import { errorStatus } from './error-statuses.js'
import type { Problem } from './problem.js'
import { problemType } from './problem.js'

/** Node's parser errors that get an answer of their own; any other unparsable request is a 400. */
const PARSER_CODES: Record<string, ErrorCode> = {
  // The request line and headers together exceed Node's limit (16 KiB unless --max-http-header-size
  // says otherwise); a long query string is the usual cause.
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  // The headers did not arrive within the server's requestTimeout.
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
}

const DETAILS: Partial<Record<ErrorCode, string>> = {
  HEADERS_TOO_LARGE: 'The request line and headers are too large: shorten the query string.',
  REQUEST_TIMEOUT: 'The request did not arrive in time.',
  BAD_REQUEST: 'The request could not be parsed as HTTP.',
}

/**
 * Answers a request Node could not parse, before Fastify ever sees it, with the same problem+json
 * every other error has (Fastify's default writes a body of its own shape). The connection closes
 * afterwards: after a parse error the rest of the stream cannot be trusted.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const code = PARSER_CODES[err.code ?? ''] ?? 'BAD_REQUEST'
  const status = errorStatus(code)
  const problem: Problem = {
    type: problemType(code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail: DETAILS[code],
    // The request line was not read, so there is no path to name.
    instance: '/',
    code,
    requestId: randomUUID(),
  }
  const body = JSON.stringify(problem)
  socket.end(
    `HTTP/1.1 ${status} ${problem.title}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${problem.requestId}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  )
}
