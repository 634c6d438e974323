// The fan-out on its own, over real loopback sockets (no Kafka): the rolling sweep must give every
// live client every entry published after it went live, once and in order, however publishes
// interleave with a sweep that spans many event-loop turns.
import { connect, createServer, type Server, type Socket } from 'node:net'
import { BUILTIN_RULE_ID } from '@intellisite/alert-rules'
import type { Alert, AlertRule } from '@intellisite/detections-store'
import pino from 'pino'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { type AlertEntry, createAlertEntry } from '../../src/alerts/alert-entry.js'
import { createAlertSelection, createStreamReader } from '../../src/alerts/alert-reader.js'
import { createAlertsMetrics } from '../../src/alerts/alerts-metrics.js'
import { createSseBroadcaster, type SseBroadcaster } from '../../src/alerts/sse-broadcaster.js'
import type { SseClient } from '../../src/alerts/sse-client.js'

interface Reader {
  /** Alert ids received, in order. */
  ids: string[]
  /** The alerts received, in order. */
  alerts: Alert[]
  /** Everything received (HTTP chunk framing included). */
  raw: string
  ended: Promise<void>
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let offset = 0
function entry(make = 'Toyota', category = 'SUV', rules?: AlertRule[]): AlertEntry {
  const alert: Alert = {
    id: `a${offset}`,
    detectedAt: new Date(0).toISOString(),
    year: 2020,
    make,
    model: 'm',
    category,
    reason: rules ? `matches rule ${rules[0]!.name}` : 'category matches SUV',
    ...(rules ? { rules } : {}),
  }
  offset++
  return createAlertEntry(0, offset - 1, alert, [offset])
}

function broadcaster(sweepChunk: number, heartbeatMs = 60_000): SseBroadcaster {
  const registry = new Registry()
  const result = createSseBroadcaster({
    heartbeatMs,
    maxQueueFrames: 10_000,
    maxQueueBytes: 16 * 2 ** 20,
    maxConnectionsPerUser: 10_000,
    writesPerSecond: 0,
    maxFlushDelayMs: 0,
    sweepChunk,
    metrics: createAlertsMetrics(
      registry,
      () => 0,
      () => 0,
    ),
    logger: pino({ level: 'silent' }),
  })
  cleanups.push(() => result.close())
  return result
}

/** Opens `count` connections; the server side of each becomes a catching-up client. */
async function open(
  fanOut: SseBroadcaster,
  count: number,
  options: { make?: string; rule?: string; user?: string } = {},
): Promise<{ clients: SseClient[]; readers: Reader[] }> {
  const clients: SseClient[] = []
  const accepted: Socket[] = []
  const server: Server = createServer((socket) => accepted.push(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as { port: number }).port
  const readers: Reader[] = []
  for (let i = 0; i < count; i++) {
    const socket = connect(port, '127.0.0.1')
    cleanups.push(() => void socket.destroy())
    const reader: Reader = {
      ids: [],
      alerts: [],
      raw: '',
      ended: new Promise((resolve) => socket.once('close', () => resolve())),
    }
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      reader.raw += chunk.toString('latin1')
      for (let at = text.indexOf('\ndata: '); at >= 0; at = text.indexOf('\ndata: ')) {
        const end = text.indexOf('\n', at + 7)
        if (end < 0) break
        const alert = JSON.parse(text.slice(at + 7, end)) as Alert
        reader.ids.push(alert.id)
        reader.alerts.push(alert)
        text = text.slice(end)
      }
    })
    readers.push(reader)
  }
  while (accepted.length < count) await new Promise((resolve) => setTimeout(resolve, 5))
  const selection = createAlertSelection(options)
  for (const socket of accepted) {
    clients.push(fanOut.connect(socket, createStreamReader(options.user ?? 'u', selection)))
  }
  return { clients, readers }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('SSE broadcaster (rolling sweep)', () => {
  it('gives every client every entry once and in order when publishes land mid-sweep', async () => {
    const fanOut = broadcaster(8)
    const { clients, readers } = await open(fanOut, 200)
    for (const client of clients) fanOut.goLive(client, [offset])
    const published: string[] = []
    for (let i = 0; i < 60; i++) {
      const batch = i % 7 === 0 ? [entry(), entry()] : [entry()]
      fanOut.publish(batch)
      published.push(...batch.map((e) => e.alert.id))
      // 0–2 event-loop turns: each sweep (25 turns at 8 clients per turn) sees many publishes.
      for (let t = 0; t < i % 3; t++) await turn()
    }
    await until(() => readers.every((r) => r.ids.length >= published.length))
    await new Promise((resolve) => setTimeout(resolve, 50))
    for (const reader of readers) expect(reader.ids).toEqual(published)
  })

  it('sends a client that goes live mid-sweep only what it held and what came after, once', async () => {
    const fanOut = broadcaster(4)
    const early = await open(fanOut, 40)
    for (const client of early.clients) fanOut.goLive(client, [offset])
    const late = await open(fanOut, 10)
    const before = entry()
    fanOut.publish([before])
    // A sweep is now under way (4 clients per turn); the late clients hold `held` while
    // catching up, then go live in the middle of the sweep.
    await turn()
    const held = entry()
    fanOut.publish([held])
    // The late clients' replay covered everything before `held` (their position).
    for (const client of late.clients) fanOut.goLive(client, [held.offset])
    const after = [entry(), entry()]
    fanOut.publish(after)
    const all = [before, held, ...after].map((e) => e.alert.id)
    await until(
      () => early.readers.every((r) => r.ids.length >= 4) && late.readers.every((r) => r.ids.length >= 3),
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    for (const reader of early.readers) expect(reader.ids).toEqual(all)
    for (const reader of late.readers) expect(reader.ids).toEqual(all.slice(1))
  })

  it('applies each client its filter, sharing one chunk per filter', async () => {
    const fanOut = broadcaster(3)
    const toyota = await open(fanOut, 5, { make: 'toyota' })
    const everyone = await open(fanOut, 5)
    for (const client of [...toyota.clients, ...everyone.clients]) fanOut.goLive(client, [offset])
    const entries = [entry('Toyota'), entry('Ford'), entry('TOYOTA'), entry('Kia')]
    for (const e of entries) {
      fanOut.publish([e])
      await turn()
    }
    await until(() => everyone.readers.every((r) => r.ids.length >= 4))
    await until(() => toyota.readers.every((r) => r.ids.length >= 2))
    for (const reader of everyone.readers) expect(reader.ids).toEqual(entries.map((e) => e.alert.id))
    for (const reader of toyota.readers)
      expect(reader.ids).toEqual([entries[0]!.alert.id, entries[2]!.alert.id])
  })

  it('gives alerts of private rules only to their owners, live and held while catching up', async () => {
    const fanOut = broadcaster(3)
    const ofA: AlertRule = { id: 'rule-a', version: 1, name: 'A list', scope: 'private', owner: 'user-a' }
    const ofB: AlertRule = { id: 'rule-b', version: 1, name: 'B list', scope: 'private', owner: 'user-b' }
    const shared: AlertRule = { id: 'rule-s', version: 1, name: 'fleet', scope: 'shared' }
    const a = await open(fanOut, 4, { user: 'user-a' })
    const b = await open(fanOut, 4, { user: 'user-b' })
    const onlyA = await open(fanOut, 2, { user: 'user-a', rule: 'rule-a' })
    const snooper = await open(fanOut, 2, { user: 'user-c', rule: 'rule-a,rule-b' })
    const live = [...a.clients.slice(0, 2), ...b.clients.slice(0, 2), ...onlyA.clients, ...snooper.clients]
    for (const client of live) fanOut.goLive(client, [offset])
    // The others catch up while these are published: they hold them, then go live.
    const catchingUp = [...a.clients.slice(2), ...b.clients.slice(2)]
    const entries = [
      entry('Toyota', 'SUV', [ofA]),
      entry('Toyota', 'SUV', [shared]),
      entry('Toyota', 'SUV', [ofB, ofA]),
      entry('Toyota', 'SUV'),
      entry('Toyota', 'SUV', [shared, ofB]),
    ]
    fanOut.publish(entries.slice(0, 2))
    await turn()
    fanOut.publish(entries.slice(2))
    for (const client of catchingUp) fanOut.goLive(client, [entries[0]!.offset])
    const ids = (...picked: number[]) => picked.map((i) => entries[i]!.alert.id)
    await until(() => [...a.readers, ...b.readers].every((r) => r.ids.length >= 4))
    await until(() => a.readers.every((r) => r.ids.length >= 5))
    await until(() => onlyA.readers.every((r) => r.ids.length >= 2))
    await new Promise((resolve) => setTimeout(resolve, 50))
    for (const reader of a.readers) {
      expect(reader.ids).toEqual(ids(0, 1, 2, 3, 4))
      expect(reader.alerts.map((x) => x.rules?.map((r) => r.id))).toEqual([
        ['rule-a'],
        ['rule-s'],
        ['rule-a'],
        [BUILTIN_RULE_ID],
        ['rule-s'],
      ])
      // The reason named B's rule: A reads one naming a rule A can see.
      expect(reader.alerts[4]!.reason).toBe('matches rule fleet')
      expect(reader.alerts[2]!.reason).toBe('matches rule A list')
      expect(reader.raw).not.toContain('B list')
      expect(reader.raw).not.toContain('user-')
    }
    for (const reader of b.readers) {
      expect(reader.ids).toEqual(ids(1, 2, 3, 4))
      expect(reader.alerts[1]!.rules).toEqual([
        { id: 'rule-b', version: 1, name: 'B list', scope: 'private' },
      ])
      expect(reader.alerts[3]!.rules?.map((r) => r.id)).toEqual(['rule-s', 'rule-b'])
      expect(reader.raw).not.toContain('A list')
    }
    for (const reader of onlyA.readers) expect(reader.ids).toEqual(ids(0, 2))
    for (const reader of snooper.readers) expect(reader.ids).toEqual([])
  })

  it('close() delivers everything already published, mid-sweep included, then ends every stream', async () => {
    const fanOut = broadcaster(2)
    const { clients, readers } = await open(fanOut, 30)
    for (const client of clients) fanOut.goLive(client, [offset])
    const entries = [entry(), entry(), entry()]
    fanOut.publish([entries[0]!])
    await turn()
    fanOut.publish([entries[1]!, entries[2]!])
    await fanOut.close()
    await Promise.all(readers.map((r) => r.ended))
    for (const reader of readers) expect(reader.ids).toEqual(entries.map((e) => e.alert.id))
    expect(fanOut.clientCount).toBe(0)
  })

  it('sends heartbeats only to streams that carried nothing since the previous one', async () => {
    const fanOut = broadcaster(256, 50)
    const busy = await open(fanOut, 3)
    const quiet = await open(fanOut, 3, { make: 'nobody' })
    for (const client of [...busy.clients, ...quiet.clients]) fanOut.goLive(client, [offset])
    const started = Date.now()
    while (Date.now() - started < 600) {
      fanOut.publish([entry()])
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
    const heartbeats = (reader: Reader) => reader.raw.split('\r\n:\n\n\r\n').length - 1
    for (const reader of busy.readers) {
      expect(reader.ids.length).toBeGreaterThan(20)
      expect(heartbeats(reader)).toBe(0)
    }
    for (const reader of quiet.readers) {
      expect(reader.ids).toEqual([])
      expect(heartbeats(reader)).toBeGreaterThanOrEqual(5)
    }
  })
})
