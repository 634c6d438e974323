// Fan-out over processes, over real loopback sockets (no Kafka): streams catch up here and are
// handed to fan-out processes when they go live; what a client receives must be exactly what the
// in-process broadcaster would send it, across the hand-off.
import { readdirSync, readFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Alert } from '@intellisite/detections-store'
import pino from 'pino'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { type AlertEntry, createAlertEntry, createAlertFilter } from '../../src/alerts/alert-entry.js'
import { createAlertsMetrics } from '../../src/alerts/alerts-metrics.js'
import type { SseBroadcaster } from '../../src/alerts/sse-broadcaster.js'
import type { SseClient } from '../../src/alerts/sse-client.js'
import { createSseFanOutPool } from '../../src/alerts/sse-fanout-pool.js'

interface Reader {
  ids: string[]
  closed: boolean
  ended: Promise<void>
  socket: Socket
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let offset = 0
function entry(make = 'Toyota'): AlertEntry {
  const alert: Alert = {
    id: `a${offset}`,
    detectedAt: new Date(0).toISOString(),
    year: 2020,
    make,
    model: 'm',
    category: 'SUV',
    reason: 'category matches SUV',
  }
  offset++
  return createAlertEntry(0, offset - 1, alert, [offset])
}

function pool(processes: number, maxConnectionsPerUser = 10_000): SseBroadcaster {
  const result = createSseFanOutPool({
    processes,
    // The fan-out processes run the TypeScript sources, as this test does.
    execArgv: ['--conditions=development', '--import', 'tsx'],
    heartbeatMs: 60_000,
    maxQueueFrames: 10_000,
    maxQueueBytes: 16 * 2 ** 20,
    maxConnectionsPerUser,
    writesPerSecond: 0,
    maxFlushDelayMs: 0,
    sweepChunk: 4,
    metrics: createAlertsMetrics(
      new Registry(),
      () => 0,
      () => 0,
    ),
    logger: pino({ level: 'silent' }),
    logLevel: 'silent',
  })
  cleanups.push(() => result.close())
  return result
}

async function open(
  fanOut: SseBroadcaster,
  count: number,
  options: { make?: string; user?: string } = {},
): Promise<{ clients: SseClient[]; readers: Reader[]; accepted: Socket[] }> {
  const accepted: Socket[] = []
  const server: Server = createServer((socket) => accepted.push(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as { port: number }).port
  const readers: Reader[] = []
  for (let i = 0; i < count; i++) {
    const socket = connect(port, '127.0.0.1')
    cleanups.push(() => void socket.destroy())
    const reader: Reader = { ids: [], closed: false, socket, ended: Promise.resolve() }
    reader.ended = new Promise((resolve) =>
      socket.once('close', () => {
        reader.closed = true
        resolve()
      }),
    )
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      for (let at = text.indexOf('\ndata: '); at >= 0; at = text.indexOf('\ndata: ')) {
        const end = text.indexOf('\n', at + 7)
        if (end < 0) break
        reader.ids.push((JSON.parse(text.slice(at + 7, end)) as Alert).id)
        text = text.slice(end)
      }
    })
    readers.push(reader)
  }
  while (accepted.length < count) await new Promise((resolve) => setTimeout(resolve, 5))
  const { filter, key } = createAlertFilter(options)
  const user = options.user ?? 'u'
  const clients = accepted.map((socket) => {
    expect(fanOut.acquire(user)).toBe(true)
    return fanOut.connect(socket, { user, filter, filterKey: key })
  })
  return { clients, readers, accepted }
}

async function until(condition: () => boolean, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
const turn = () => new Promise((resolve) => setImmediate(resolve))

/** Pids of this process's fan-out processes (Linux). */
function fanOutPids(): number[] {
  const pids: number[] = []
  for (const task of readdirSync('/proc/self/task')) {
    const text = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim()
    for (const pid of text ? text.split(' ').map(Number) : []) {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sse-fanout-process')) pids.push(pid)
    }
  }
  return pids
}

describe('SSE fan-out over processes', () => {
  it('hands live streams to the fan-out processes; each client gets what it held, then everything after, once and in order', async () => {
    const fanOut = pool(2)
    const { clients, readers, accepted } = await open(fanOut, 30)
    // Published while the clients catch up: held, and sent at the hand-off.
    const held = [entry(), entry()]
    fanOut.publish(held)
    for (const client of clients) fanOut.goLive(client, [held[0]!.offset])
    const published = [...held]
    for (let i = 0; i < 40; i++) {
      const batch = i % 5 === 0 ? [entry(), entry()] : [entry()]
      fanOut.publish(batch)
      published.push(...batch)
      for (let t = 0; t < i % 3; t++) await turn()
    }
    const ids = published.map((e) => e.alert.id)
    await until(() => readers.every((r) => r.ids.length >= ids.length), 'every entry')
    await new Promise((resolve) => setTimeout(resolve, 50))
    for (const reader of readers) expect(reader.ids).toEqual(ids)
    // The sockets left this process: its side is destroyed while the readers keep receiving.
    expect(accepted.every((socket) => socket.destroyed)).toBe(true)
    expect(fanOut.clientCount).toBe(30)
  })

  it('skips at the seam what the replay already covered, and applies each client its filter', async () => {
    const fanOut = pool(1)
    const toyota = await open(fanOut, 3, { make: 'toyota' })
    const everyone = await open(fanOut, 3)
    const first = [entry('Toyota'), entry('Ford')]
    fanOut.publish(first)
    // The replay covered `first` (the position is after it): only later entries are new.
    for (const client of [...toyota.clients, ...everyone.clients])
      fanOut.goLive(client, [first[1]!.offset + 1])
    const later = [entry('Kia'), entry('TOYOTA'), entry('Ford')]
    for (const e of later) {
      fanOut.publish([e])
      await turn()
    }
    await until(() => everyone.readers.every((r) => r.ids.length >= 3), 'unfiltered streams')
    await until(() => toyota.readers.every((r) => r.ids.length >= 1), 'filtered streams')
    await new Promise((resolve) => setTimeout(resolve, 50))
    for (const reader of everyone.readers) expect(reader.ids).toEqual(later.map((e) => e.alert.id))
    for (const reader of toyota.readers) expect(reader.ids).toEqual([later[1]!.alert.id])
  })

  it('close() delivers everything already published, then ends every stream', async () => {
    const fanOut = pool(2)
    const { clients, readers } = await open(fanOut, 20)
    for (const client of clients) fanOut.goLive(client, [offset])
    await until(() => fanOut.clientCount === 20)
    const entries = [entry(), entry(), entry()]
    fanOut.publish([entries[0]!])
    await turn()
    fanOut.publish([entries[1]!, entries[2]!])
    await fanOut.close()
    await Promise.all(readers.map((r) => r.ended))
    for (const reader of readers) expect(reader.ids).toEqual(entries.map((e) => e.alert.id))
    expect(fanOut.clientCount).toBe(0)
  })

  it("frees a user's connection slot when a handed-off stream ends", async () => {
    const fanOut = pool(1, 2)
    const { clients, readers } = await open(fanOut, 2, { user: 'capped' })
    expect(fanOut.acquire('capped')).toBe(false)
    for (const client of clients) fanOut.goLive(client, [offset])
    fanOut.publish([entry()])
    await until(() => readers.every((r) => r.ids.length === 1), 'delivery')
    readers[0]!.socket.destroy()
    await until(() => fanOut.acquire('capped'), 'a free slot')
  })

  it('when a fan-out process dies its streams end and their slots are freed; a new process takes the next streams', async () => {
    const before = new Set(fanOutPids())
    const fanOut = pool(1, 3)
    await until(() => fanOutPids().some((pid) => !before.has(pid)), 'the fan-out process')
    const [pid] = fanOutPids().filter((p) => !before.has(p))
    const first = await open(fanOut, 3, { user: 'v' })
    for (const client of first.clients) fanOut.goLive(client, [offset])
    await until(() => first.accepted.every((socket) => socket.destroyed), 'the hand-off')
    process.kill(pid!, 'SIGKILL')
    await Promise.all(first.readers.map((r) => r.ended))
    await until(() => fanOut.clientCount === 0, 'the slots')
    await until(() => fanOutPids().some((p) => !before.has(p) && p !== pid), 'a new fan-out process')
    // Wait for it to be ready, then a new stream goes through it.
    const second = await open(fanOut, 3, { user: 'v' })
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const client of second.clients) fanOut.goLive(client, [offset])
    const e = entry()
    await until(() => fanOut.clientCount === 3)
    fanOut.publish([e])
    await until(() => second.readers.every((r) => r.ids.length === 1), 'delivery by the new process')
    expect(second.readers.map((r) => r.ids)).toEqual([[e.alert.id], [e.alert.id], [e.alert.id]])
  })
})
