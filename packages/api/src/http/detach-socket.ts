import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'

// `freeParser` is what Node's HTTP server itself calls when a socket closes or is upgraded; it is
// not in the typed API, so it is looked up at run time and the detach is skipped if it is missing.
const require = createRequire(import.meta.url)
const httpCommon = require('node:_http_common') as {
  freeParser?: (parser: unknown, req: unknown, socket: unknown) => void
}

/** The listeners Node's HTTP server puts on a connection's socket, by function name. */
const SERVER_LISTENERS: Record<string, string> = {
  data: 'bound socketOnData',
  end: 'bound socketOnEnd',
  close: 'bound socketOnClose',
  drain: 'bound socketOnDrain',
  error: 'socketOnError',
  timeout: 'socketOnTimeout',
}

type ParsedSocket = Socket & { parser?: { _consumed?: boolean } | null }

/**
 * Takes a hijacked connection away from Node's HTTP server, as the server itself does for an
 * `Upgrade`: its listeners are removed and its parser freed, so the request, the response and
 * everything they reference (the framework's request, reply and logger) can be collected while the
 * socket lives on as a plain byte stream. A long-lived stream then costs its socket and little
 * more. Returns false, changing nothing, if this Node's server does not look as expected.
 */
export function detachFromHttpServer(request: IncomingMessage, response: ServerResponse): boolean {
  const socket = request.socket as ParsedSocket
  const { freeParser } = httpCommon
  if (typeof freeParser !== 'function' || !socket.parser) return false
  const found: [string, (...args: unknown[]) => void][] = []
  for (const [event, name] of Object.entries(SERVER_LISTENERS)) {
    const listener = socket.listeners(event).find((fn) => fn.name === name)
    if (!listener) return false
    found.push([event, listener as (...args: unknown[]) => void])
  }
  for (const [event, listener] of found) socket.removeListener(event, listener)
  response.detachSocket(socket)
  freeParser(socket.parser, request, socket)
  return true
}
