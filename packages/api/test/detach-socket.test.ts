// A long-lived stream taken away from Node's HTTP server must keep working as a byte stream while
// the request and response objects are released. The detach relies on the server's internals; if
// a Node upgrade changes them, this test says so (the stream would still work, at a higher cost).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { expect, it, onTestFinished } from 'vitest'
import { detachFromHttpServer } from '../src/http/detach-socket.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

async function collected(refs: WeakRef<object>[]): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    gc()
    if (refs.every((ref) => ref.deref() === undefined)) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return false
}

/** A server whose one route writes a head and keeps the socket, detached or not. */
async function streamingServer(detach: boolean) {
  const kept: Socket[] = []
  const refs: WeakRef<object>[] = []
  const detached: boolean[] = []
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    refs.push(new WeakRef(request), new WeakRef(response))
    const socket = request.socket
    detached.push(detach && detachFromHttpServer(request, response))
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhead\n')
    kept.push(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { server, port, kept, refs, detached }
}

function openClient(port: number): Promise<{ socket: Socket; received: () => string }> {
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /stream HTTP/1.1\r\nHost: test\r\n\r\n')
    })
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      text += chunk
      if (text.includes('head\n')) resolve({ socket, received: () => text })
    })
    socket.on('error', reject)
  })
}

it('releases the request and response of a detached stream, which keeps streaming', async () => {
  const { server, port, kept, refs, detached } = await streamingServer(true)
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const client = await openClient(port)
  onTestFinished(() => {
    client.socket.destroy()
  })

  expect(detached).toEqual([true])
  expect(await collected(refs)).toBe(true)
  // The socket is a plain byte stream now: what is written arrives, and the server no longer
  // parses what the peer sends (a second request is not answered by the HTTP server).
  kept[0]!.write('after detach\n')
  client.socket.write('GET /stream HTTP/1.1\r\nHost: test\r\n\r\n')
  await expect.poll(client.received).toContain('after detach\n')
  expect(kept).toHaveLength(1)
  // The server still closes once the detached socket is gone.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  kept[0]!.destroy()
  await closed
})

it('keeps the request and response alive without the detach (what the detach saves)', async () => {
  const { server, port, kept, refs } = await streamingServer(false)
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const client = await openClient(port)
  onTestFinished(() => {
    client.socket.destroy()
  })

  expect(await collected(refs)).toBe(false)
  kept[0]!.destroy()
})
