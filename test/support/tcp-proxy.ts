// A TCP proxy a test controls, to cut a real service off from the code under test (an outage)
// without stopping the shared service itself.
import net from 'node:net'

export interface TcpProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number
  /** Connections currently piped to the target. */
  readonly liveConnections: number
  /**
   * Cuts the service off: destroys live connections; new ones are refused (accepted and reset at
   * once) or, with `hold`, kept waiting until `resume()`.
   */
  pause(mode?: 'refuse' | 'hold'): void
  resume(): void
  close(): Promise<void>
}

export async function createTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const live = new Set<net.Socket>()
  const held: net.Socket[] = []
  let mode: 'open' | 'refuse' | 'hold' = 'open'

  function pipe(client: net.Socket): void {
    const upstream = net.connect(target.port, target.host)
    live.add(client)
    live.add(upstream)
    const teardown = () => {
      live.delete(client)
      live.delete(upstream)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', teardown).on('close', teardown)
    upstream.on('error', teardown).on('close', teardown)
    client.pipe(upstream).pipe(client)
  }

  const server = net.createServer((client) => {
    if (mode === 'open') return pipe(client)
    if (mode === 'hold') {
      client.on('error', () => {})
      held.push(client)
      return
    }
    client.resetAndDestroy()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address')

  return {
    port: address.port,
    get liveConnections() {
      return live.size / 2
    },
    pause(next = 'refuse') {
      mode = next
      for (const socket of live) socket.destroy()
      live.clear()
    },
    resume() {
      mode = 'open'
      for (const client of held.splice(0)) {
        if (!client.destroyed) pipe(client)
      }
    },
    async close() {
      mode = 'refuse'
      for (const socket of [...live, ...held]) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
