// The notifier SIGKILLed at random moments, as a child process, while alerts keep coming: every
// alert still arrives at least once, and a duplicate carries the same webhook-id.
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitFor } from '../../../test/support/wait.js'
import {
  createAlertsTopic,
  createEndpoint,
  createReceiver,
  createTestDatabase,
  createUser,
  notifierEnv,
  spawnNotifier,
  testAlert,
} from './helpers.js'

const ALERTS = 5_000
const KILLS = 5

describe('crash recovery', () => {
  it(`delivers ${ALERTS} alerts at least once across ${KILLS} SIGKILLs`, { timeout: 120_000 }, async () => {
    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const owner = await createUser(database.pool)
    const receiver = await createReceiver()
    await createEndpoint(database.pool, owner, receiver.url)
    const env = notifierEnv(database, topic.name, {
      NOTIFIER_SESSION_TIMEOUT: '6s',
      WEBHOOK_TOTAL_TIMEOUT: '2s',
      WEBHOOK_RESPONSE_TIMEOUT: '2s',
    })
    let child: ChildProcess | undefined
    onTestFinished(() => {
      child?.kill('SIGKILL')
    })

    const alerts = Array.from({ length: ALERTS }, (_, i) => testAlert(i))
    const publishing = (async () => {
      for (let i = 0; i < 10; i++) {
        await topic.publish(alerts.slice((i * ALERTS) / 10, ((i + 1) * ALERTS) / 10))
        await new Promise((resolve) => setTimeout(resolve, 600))
      }
    })()
    const kills: number[] = []
    for (let k = 0; k < KILLS; k++) {
      child = spawnNotifier(env)
      const lifetime = 1_500 + Math.floor(Math.random() * 2_500)
      await new Promise((resolve) => setTimeout(resolve, lifetime))
      kills.push(receiver.requests.length)
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    await publishing
    child = spawnNotifier(env)
    const wanted = new Set(alerts.map((a) => a.id))
    const received = new Map<string, Set<string>>()
    let seen = 0
    const tally = () => {
      for (; seen < receiver.requests.length; seen++) {
        const request = receiver.requests[seen]!
        const id = (JSON.parse(request.body) as { data: { id: string } }).data.id
        received.set(id, (received.get(id) ?? new Set()).add(String(request.headers['webhook-id'])))
      }
      return received.size >= wanted.size
    }
    await waitFor(tally, {
      timeoutMs: 90_000,
      intervalMs: 200,
      what: () => `every alert (${received.size}/${wanted.size}; requests when killed: ${kills.join(', ')})`,
    })
    const duplicates = receiver.requests.length - wanted.size
    console.log(
      `crash: ${ALERTS} alerts, ${KILLS} SIGKILLs (requests received at each: ${kills.join(', ')}), ` +
        `${receiver.requests.length} requests, ${duplicates} duplicates`,
    )
    expect([...received.keys()].every((id) => wanted.has(id))).toBe(true)
    for (const ids of received.values()) expect(ids.size).toBe(1)
    const webhookIds = new Set([...received.values()].flatMap((ids) => [...ids]))
    expect(webhookIds.size).toBe(ALERTS)
    expect(kills.some((n) => n > 0)).toBe(true)
  })
})
