import pg from 'pg'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createTcpProxy } from '../../../test/support/tcp-proxy.js'
import { runMigrationsWhenUp } from '../src/users/migrate.js'
import { createPostgresDatabase } from './helper.js'

describe('migrate', () => {
  it('waits for a PostgreSQL that does not accept connections yet, then migrates', async () => {
    const database = await createPostgresDatabase()
    onTestFinished(database.drop)
    const url = new URL(database.url)
    const proxy = await createTcpProxy({ host: url.hostname, port: Number(url.port) })
    onTestFinished(() => proxy.close())
    proxy.pause('refuse')
    url.hostname = '127.0.0.1'
    url.port = String(proxy.port)
    const pool = new pg.Pool({ connectionString: url.toString(), max: 1 })
    onTestFinished(() => pool.end())

    const retries: unknown[] = []
    setTimeout(() => proxy.resume(), 1_500)
    const applied = await runMigrationsWhenUp(pool, { waitMs: 20_000, onRetry: (err) => retries.push(err) })
    expect(retries.length).toBeGreaterThan(0)
    expect(applied.map((m) => m.name)).toContain('create-users')
    const { rows } = await pool.query("SELECT to_regclass('users') AS users")
    expect(rows[0]?.users).toBe('users')
  })

  it('gives up after the wait, with the connection error', async () => {
    const proxy = await createTcpProxy({ host: '127.0.0.1', port: 1 })
    onTestFinished(() => proxy.close())
    proxy.pause('refuse')
    const pool = new pg.Pool({ connectionString: `postgres://u:p@127.0.0.1:${proxy.port}/x`, max: 1 })
    onTestFinished(() => pool.end())
    const started = Date.now()
    await expect(runMigrationsWhenUp(pool, { waitMs: 1_000 })).rejects.toMatchObject({ code: 'ECONNRESET' })
    expect(Date.now() - started).toBeLessThan(5_000)
  })
})
