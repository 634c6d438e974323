// Who gets which alert on GET /alerts, end to end through Kafka: an alert reaches a reader only
// when one of the rules it matched is shared or theirs, live and on every kind of resume, and it
// names only the rules that reader may see. `?rule=` narrows the stream, and resumes with it too.
import { randomUUID } from 'node:crypto'
import { BUILTIN_RULE_ID } from '@intellisite/alert-rules'
import type { Alert } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import {
  alertsConfig,
  BUILTIN,
  createAlertsProducer,
  deleteTopicLater,
  makeAlert,
  metricValue,
  privateRule,
  type Received,
  startServer,
  subscribe,
  waitFor,
} from './helpers.js'

async function setup(overrides: Record<string, string> = {}) {
  const topic = `alerts-test-${randomUUID()}`
  await deleteTopicLater(topic)
  const server = await startServer(alertsConfig(topic, overrides))
  const producer = await createAlertsProducer(topic)
  return { server, producer }
}

const opened = (received: Received) => waitFor(() => received.source.readyState === 1)
const settle = () => new Promise((resolve) => setTimeout(resolve, 300))
const sortedIds = (alerts: readonly Alert[]) => alerts.map((x) => x.id).sort()
const ruleIdsOf = (received: Received) =>
  Object.fromEntries(received.alerts.map((x) => [x.id, x.rules?.map((r) => r.id)]))

const ruleA = privateRule('user-a', 'A watch list')
const ruleB = privateRule('user-b', 'B secret list')

/** One alert of each kind; `seq` keeps them apart across batches. */
function mix(seq: number) {
  return {
    onlyA: makeAlert(seq, { rules: [ruleA], reason: 'matches rule A watch list' }),
    shared: makeAlert(seq + 1),
    both: makeAlert(seq + 2, { rules: [ruleB, ruleA], reason: 'matches rule B secret list' }),
    legacy: (({ rules: _rules, ...alert }) => alert)(makeAlert(seq + 3)),
    onlyB: makeAlert(seq + 4, { rules: [ruleB], reason: 'matches rule B secret list' }),
  }
}

/** What each user must get of a mix, and the rules each alert must name for them. */
function expected(m: ReturnType<typeof mix>) {
  return {
    a: {
      [m.onlyA.id]: [ruleA.id],
      [m.shared.id]: [BUILTIN_RULE_ID],
      [m.both.id]: [ruleA.id],
      [m.legacy.id]: [BUILTIN_RULE_ID],
    },
    b: {
      [m.shared.id]: [BUILTIN_RULE_ID],
      [m.both.id]: [ruleB.id],
      [m.legacy.id]: [BUILTIN_RULE_ID],
      [m.onlyB.id]: [ruleB.id],
    },
  }
}

/** Nothing of the other user's rule, nor any owner, in what a user received. */
function expectNothingOf(received: Received, other: typeof ruleA, me: typeof ruleA) {
  const raw = received.events.map((e) => e.data).join('\n')
  expect(raw).not.toContain(other.id)
  expect(raw).not.toContain(other.name)
  expect(raw).not.toContain('"owner"')
  expect(raw).not.toContain(other.owner!)
  expect(raw).not.toContain(me.owner!)
}

describe('GET /alerts visibility', () => {
  it.each([
    { source: 'memory', window: '1000' },
    { source: 'kafka', window: '0' },
  ])(
    'gives each user only alerts of shared rules and their own, live and on resume (from $source)',
    async ({ source, window }) => {
      const { server, producer } = await setup({ SSE_REPLAY_WINDOW: window })
      const tokenA = server.token({ sub: 'user-a' })
      const tokenB = server.token({ sub: 'user-b' })
      const a = subscribe(`${server.url}/alerts`, tokenA)
      const b = subscribe(`${server.url}/alerts`, tokenB)
      // Stay connected throughout: once both have an alert, the server has consumed it.
      const watchA = subscribe(`${server.url}/alerts`, tokenA)
      const watchB = subscribe(`${server.url}/alerts`, tokenB)
      await Promise.all([opened(a), opened(b), opened(watchA), opened(watchB)])

      const first = mix(0)
      await producer.send(Object.values(first))
      await Promise.all([a.waitFor(4), b.waitFor(4)])
      await settle()
      expect(ruleIdsOf(a)).toEqual(expected(first).a)
      expect(ruleIdsOf(b)).toEqual(expected(first).b)
      expect(a.alerts).toHaveLength(4)
      expect(b.alerts).toHaveLength(4)
      // The alert that matched both private rules gives each a reason naming their own.
      const bothFor = (received: Received) => received.alerts.find((x) => x.id === first.both.id)
      expect(bothFor(a)?.reason).toBe('matches rule A watch list')
      expect(bothFor(b)?.reason).toBe('matches rule B secret list')
      expect(bothFor(a)?.rules).toEqual([
        { id: ruleA.id, version: 1, name: 'A watch list', scope: 'private' },
      ])
      expectNothingOf(a, ruleB, ruleA)
      expectNothingOf(b, ruleA, ruleB)
      const lastA = a.ids.at(-1)!
      const lastB = b.ids.at(-1)!
      a.close()
      b.close()

      // Produced while both are away: each resumes with exactly their own, nobody else's.
      const second = mix(10)
      await producer.send(Object.values(second))
      // Resumed only once the server has read them, so they come from the catch-up, not live.
      await Promise.all([watchA.waitFor(8), watchB.waitFor(8)])
      const resumedA = subscribe(`${server.url}/alerts`, tokenA, { 'last-event-id': lastA })
      const resumedB = subscribe(`${server.url}/alerts`, tokenB, { 'last-event-id': lastB })
      await Promise.all([resumedA.waitFor(4), resumedB.waitFor(4)])
      await settle()
      expect(ruleIdsOf(resumedA)).toEqual(expected(second).a)
      expect(ruleIdsOf(resumedB)).toEqual(expected(second).b)
      expect(resumedA.alerts).toHaveLength(4)
      expect(resumedB.alerts).toHaveLength(4)
      expectNothingOf(resumedA, ruleB, ruleA)
      expectNothingOf(resumedB, ruleA, ruleB)
      expect(await metricValue(server.registry, 'alerts_sse_replays_total', { source })).toBe(2)

      // B resumes from where A stood, with B's own token: still only what B may see (B's alert of
      // the first mix may come too, when it was consumed after A's last one).
      const fromA = subscribe(`${server.url}/alerts`, tokenB, { 'last-event-id': lastA })
      await fromA.waitFor(4)
      await settle()
      expect(ruleIdsOf(fromA)).toMatchObject(expected(second).b)
      expect({ ...expected(first).b, ...expected(second).b }).toMatchObject(ruleIdsOf(fromA))
      expectNothingOf(fromA, ruleA, ruleB)

      // Live again after the resume.
      const third = mix(20)
      await producer.send(Object.values(third))
      await Promise.all([resumedA.waitFor(8), resumedB.waitFor(8)])
      await settle()
      expect(ruleIdsOf(resumedA)).toEqual({ ...expected(second).a, ...expected(third).a })
      expect(ruleIdsOf(resumedB)).toEqual({ ...expected(second).b, ...expected(third).b })
    },
  )

  it('narrows the stream to ?rule= ids it may see, and resumes with the filter without gap or duplicate', async () => {
    const { server, producer } = await setup()
    const tokenA = server.token({ sub: 'user-a' })
    const tokenB = server.token({ sub: 'user-b' })
    const url = `${server.url}/alerts?rule=${ruleA.id}`
    const a = subscribe(url, tokenA)
    // B names A's private rule (which B cannot see) and the built-in one, comma-separated.
    const b = subscribe(`${server.url}/alerts?rule=${ruleA.id},${BUILTIN_RULE_ID}`, tokenB)
    const bRepeated = subscribe(`${server.url}/alerts?rule=${ruleA.id}&rule=${BUILTIN_RULE_ID}`, tokenB)
    await Promise.all([opened(a), opened(b), opened(bRepeated)])
    const m1 = makeAlert(1, { rules: [ruleA] })
    const x1 = makeAlert(2)
    const m2 = makeAlert(3, { rules: [BUILTIN, ruleA] })
    const x2 = makeAlert(4, { rules: [ruleB] })
    const m3 = makeAlert(5, { rules: [ruleA] })
    const x3 = makeAlert(6, { rules: [ruleB, BUILTIN] })
    await producer.send([m1, x1, m2, x2, m3, x3])
    await Promise.all([a.waitFor(3), b.waitFor(3), bRepeated.waitFor(3)])
    await settle()
    expect(sortedIds(a.alerts)).toEqual(sortedIds([m1, m2, m3]))
    expect(sortedIds(b.alerts)).toEqual(sortedIds([x1, m2, x3]))
    expect(b.ids).toEqual(bRepeated.ids)
    expect(ruleIdsOf(b)[m2.id]).toEqual([BUILTIN_RULE_ID])
    expectNothingOf(b, ruleA, ruleB)

    // Resume from A's last alert: alerts filtered out meanwhile still moved A's position.
    const lastA = a.ids.at(-1)!
    const firstA = a.ids[0]!
    a.close()
    const m4 = makeAlert(7, { rules: [ruleA] })
    const x4 = makeAlert(8)
    const m5 = makeAlert(9, { rules: [ruleA, ruleB] })
    const x5 = makeAlert(10, { rules: [ruleB] })
    await producer.send([x4, m4, x5, m5])
    const resumed = subscribe(url, tokenA, { 'last-event-id': lastA })
    await resumed.waitFor(2)
    await settle()
    expect(sortedIds(resumed.alerts)).toEqual(sortedIds([m4, m5]))
    // From A's first alert: exactly the later ones of the first stream, then these.
    const fromFirst = subscribe(url, tokenA, { 'last-event-id': firstA })
    await fromFirst.waitFor(4)
    await settle()
    expect(sortedIds(fromFirst.alerts)).toEqual(sortedIds([...a.alerts.slice(1), m4, m5]))
    expect(fromFirst.alerts).toHaveLength(4)
    // Live again with the filter.
    const m6 = makeAlert(11, { rules: [ruleA] })
    await producer.send([makeAlert(12), m6])
    await resumed.waitFor(3)
    await settle()
    expect(resumed.alerts.map((x) => x.id)).toEqual([...resumed.alerts.slice(0, 2).map((x) => x.id), m6.id])
  })

  it('rejects a rule filter that is blank, too long or names too many rules', async () => {
    const { server } = await setup()
    const headers = { authorization: `Bearer ${server.token()}` }
    const cases = [
      'rule=',
      'rule=,%20,',
      `rule=${'r'.repeat(65)}`,
      `rule=${Array.from({ length: 51 }, (_, i) => `r${i}`).join(',')}`,
      Array.from({ length: 51 }, (_, i) => `rule=r${i}`).join('&'),
    ]
    for (const query of cases) {
      const response = await fetch(`${server.url}/alerts?${query}`, { headers })
      expect(response.status, query).toBe(400)
      expect(response.headers.get('content-type')).toContain('application/problem+json')
      await response.body?.cancel()
    }
    const ok = await fetch(
      `${server.url}/alerts?${Array.from({ length: 50 }, (_, i) => `rule=${'r'.repeat(63)}${i % 10}`).join('&')}`,
      { headers },
    )
    expect(ok.status).toBe(200)
    await ok.body?.cancel()
  })
})
