// The delivery half of the SSRF guard, with WEBHOOK_ALLOW_PRIVATE=false: the address actually
// dialled is checked, so a DNS answer that changes after registration cannot reach our network.
// Every target here is on loopback (a listener counts connections, and none may arrive); no test
// dials anything else.

import type { LookupAddress } from 'node:dns'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { checkWebhookUrl } from '@intellisite/webhooks'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitFor } from '../../../test/support/wait.js'
import {
  createAlertsTopic,
  createEndpoint,
  createTestDatabase,
  createUser,
  notifierEnv,
  startNotifier,
  testAlert,
} from './helpers.js'

const answers =
  (table: Record<string, string>) =>
  async (hostname: string): Promise<LookupAddress[]> => {
    const address = table[hostname]
    if (address === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
    return [{ address, family: address.includes(':') ? 6 : 4 }]
  }

describe('delivery-time address checks', () => {
  it('refuses a host whose DNS answer turned private after registration, and literal private hosts, before connecting', async () => {
    const listener = createServer()
    let connections = 0
    listener.on('connection', (socket) => {
      connections++
      socket.destroy()
    })
    listener.listen(0, '127.0.0.1')
    await once(listener, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => listener.close(() => resolve())))
    const port = (listener.address() as { port: number }).port

    const rebinding = `https://rebind.test:${port}/hooks`
    // Registration saw a public address (the API runs this very check)...
    await expect(
      checkWebhookUrl(rebinding, {
        allowPrivate: false,
        resolve: answers({ 'rebind.test': '93.184.216.34' }),
      }),
    ).resolves.toBeDefined()
    // ...and by delivery time the name points at loopback.
    const deliveryDns = answers({ 'rebind.test': '127.0.0.1', 'mapped.test': '::ffff:127.0.0.1' })

    const database = await createTestDatabase()
    const topic = await createAlertsTopic()
    const owner = await createUser(database.pool)
    const urls = [
      rebinding,
      `https://mapped.test:${port}/`,
      `https://127.0.0.1:${port}/`,
      `https://[::ffff:127.0.0.1]:${port}/`,
      `https://[::1]:${port}/`,
      `https://2130706433:${port}/`,
      `http://rebind.test:${port}/`,
    ]
    const endpoints = new Map<string, string>()
    for (const url of urls) endpoints.set((await createEndpoint(database.pool, owner, url)).id, url)
    await startNotifier(
      notifierEnv(database, topic.name, { WEBHOOK_ALLOW_PRIVATE: 'false', WEBHOOK_RETRY_SCHEDULE: '100ms' }),
      { resolve: deliveryDns },
    )
    await topic.publish([testAlert(1)])
    await waitFor(
      async () => {
        const { rows } = await database.pool.query(
          "SELECT count(*)::int AS n FROM webhook_deliveries WHERE state = 'failed'",
        )
        return rows[0].n === urls.length
      },
      { what: 'every delivery to fail' },
    )
    const { rows } = await database.pool.query<{
      endpoint_id: string
      attempts: number
      last_status: null
      last_error: string
    }>('SELECT endpoint_id, attempts, last_status, last_error FROM webhook_deliveries')
    const errors = Object.fromEntries(rows.map((row) => [endpoints.get(row.endpoint_id)!, row]))
    expect(errors[rebinding]?.last_error).toBe(
      'refused: 127.0.0.1 is a loopback address (rebind.test resolves to it): webhooks go to public addresses only',
    )
    expect(errors[`https://mapped.test:${port}/`]?.last_error).toMatch(
      /::ffff:127\.0\.0\.1 is an IPv4-mapped IPv6 address/,
    )
    expect(errors[`https://127.0.0.1:${port}/`]?.last_error).toMatch(/^127\.0\.0\.1 is a loopback address/)
    expect(errors[`https://[::ffff:127.0.0.1]:${port}/`]?.last_error).toMatch(/IPv4-mapped IPv6/)
    expect(errors[`https://[::1]:${port}/`]?.last_error).toMatch(/^::1 is a loopback address/)
    expect(errors[`https://2130706433:${port}/`]?.last_error).toMatch(/^127\.0\.0\.1 is a loopback address/)
    expect(errors[`http://rebind.test:${port}/`]?.last_error).toMatch(/plain http is refused/)
    for (const row of rows) {
      expect(row.attempts).toBe(2)
      expect(row.last_status).toBeNull()
    }
    expect(connections).toBe(0)
  })
})
