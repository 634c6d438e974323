// The benchmark clients' reading of a stream: whatever the reads and the proxy's chunking, every
// event's bytes reach the parsers whole and in order, and the end of the body is seen.
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { expect, it } from 'vitest'
import { createChunkedBody, openSseStream } from './sse-streams.js'

const events = Array.from({ length: 5 }, (_, i) => `id: t${i}\nevent: alert\ndata: {"model":"t${i}.5"}\n\n`)
const text = events.join('')

/** `text` in chunks of `size` bytes, as a proxy may cut it (inside events), then the last chunk. */
function chunked(size: number): string {
  let out = ''
  for (let at = 0; at < text.length; at += size) {
    const part = text.slice(at, at + size)
    out += `${part.length.toString(16)}\r\n${part}\r\n`
  }
  return `${out}0\r\n\r\n`
}

it('takes the chunk framing out wherever the chunks and the reads fall', () => {
  for (const size of [1, 7, 30, text.length]) {
    const wire = Buffer.from(chunked(size))
    for (const readSize of [1, 2, 5, 64, wire.length]) {
      const body = createChunkedBody()
      let out = ''
      let ended = false
      let at = 0
      for (; at < wire.length && !ended; at += readSize) {
        ended = body.read(wire.subarray(at, at + readSize), (data) => {
          out += data.toString('latin1')
        })
      }
      expect(out, `chunks of ${size}, reads of ${readSize}`).toBe(text)
      // Ended at the last chunk's size line: at most its closing CRLF is left unread.
      expect(ended).toBe(true)
      expect(wire.length - at).toBeLessThanOrEqual(2)
    }
  }
})

it('a stream re-chunked inside its events still gives every value, then closes at the end of the body', async () => {
  const server = createServer((socket: Socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n')
      // One write per byte would be merged by TCP anyway: chunks of 7 put sizes inside every event.
      socket.write(chunked(7))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const values: string[] = []
  let body = ''
  let closed = false
  try {
    await openSseStream({
      port: (server.address() as { port: number }).port,
      token: 'token',
      sampled: true,
      pattern: Buffer.from('"model":"t'),
      now: () => 0,
      onValue: (value) => values.push(value),
      onRead: (data) => {
        body += data.toString('latin1')
      },
      onOpen: () => undefined,
      onFail: () => undefined,
      onClose: () => {
        closed = true
      },
    })
    for (let i = 0; i < 50 && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(values).toEqual(['0.5', '1.5', '2.5', '3.5', '4.5'])
    expect(body).toBe(text)
    expect(closed).toBe(true)
  } finally {
    server.close()
  }
})
