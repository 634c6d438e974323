// Who may share rules: admins, who come from configuration or the promote-admin command, never
// from a request.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ConfigError } from '../src/config.js'
import { createPostgresDatabase, createTestApp, type TestApp, testConfig } from './helper.js'

const apiDir = fileURLToPath(new URL('..', import.meta.url))

async function role(t: TestApp, username: string): Promise<string | undefined> {
  const { rows } = await t.pool.query('SELECT role FROM users WHERE lower(username) = lower($1)', [username])
  return rows[0]?.role
}

const login = (t: TestApp, username: string, password: string) =>
  t.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })

describe('roles', () => {
  it('signs up users only: a role in the body is ignored', async () => {
    const t = await createTestApp()
    onTestFinished(() => t.close())
    const response = await t.inject({
      method: 'POST',
      url: '/users',
      payload: { username: 'mallory', password: 'password123', role: 'admin' },
    })
    expect(response.statusCode).toBe(201)
    expect(response.json()).toMatchObject({ username: 'mallory', role: 'user' })
    expect(await role(t, 'mallory')).toBe('user')
  })

  it('creates the configured admin at start when missing', async () => {
    const t = await createTestApp({ env: { ADMIN_USERNAME: 'root-admin', ADMIN_PASSWORD: 'first-admin-pw' } })
    onTestFinished(() => t.close())
    expect(await role(t, 'root-admin')).toBe('admin')
    const token = (await login(t, 'root-admin', 'first-admin-pw')).json().access_token
    const me = await t.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: `Bearer ${token}` },
    })
    expect(me.json()).toMatchObject({ username: 'root-admin', role: 'admin' })
  })

  it('promotes an existing user named by ADMIN_USERNAME and leaves its password alone', async () => {
    const database = await createPostgresDatabase()
    onTestFinished(database.drop)
    const before = await createTestApp({ databaseUrl: database.url })
    expect(
      (
        await before.inject({
          method: 'POST',
          url: '/users',
          payload: { username: 'Boss', password: 'original-pw' },
        })
      ).statusCode,
    ).toBe(201)
    await before.close()

    const t = await createTestApp({
      databaseUrl: database.url,
      env: { ADMIN_USERNAME: 'boss', ADMIN_PASSWORD: 'configured-pw' },
    })
    onTestFinished(() => t.close())
    expect(await role(t, 'Boss')).toBe('admin')
    expect((await t.pool.query('SELECT count(*)::int AS n FROM users')).rows[0].n).toBe(1)
    expect((await login(t, 'boss', 'original-pw')).statusCode).toBe(200)
    expect((await login(t, 'boss', 'configured-pw')).statusCode).toBe(401)
  })

  it('takes ADMIN_USERNAME and ADMIN_PASSWORD together or not at all, and checks them', () => {
    const issues = (env: Record<string, string>) => {
      try {
        testConfig(env)
        return []
      } catch (err) {
        if (err instanceof ConfigError) return err.issues
        throw err
      }
    }
    expect(issues({ ADMIN_USERNAME: 'root' })).toEqual([
      expect.stringMatching(/^ADMIN_PASSWORD: .*both or neither/),
    ])
    expect(issues({ ADMIN_PASSWORD: 'password123' })).toEqual([
      expect.stringMatching(/^ADMIN_USERNAME: .*both or neither/),
    ])
    expect(issues({ ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'short' })).toEqual([
      expect.stringMatching(/^ADMIN_PASSWORD: .*at least 8/),
    ])
    expect(issues({ ADMIN_USERNAME: 'root admin', ADMIN_PASSWORD: 'password123' })[0]).toMatch(
      /^ADMIN_USERNAME/,
    )
    expect(issues({ ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'password123' })).toEqual([])
    expect(testConfig()).toMatchObject({
      SUSPICIOUS_VEHICLE: 'SUV',
      ALERT_RULES_TOPIC: 'intellisite.alert-rules',
    })
  })

  it('promotes an existing user with the promote-admin command, and fails for an unknown one', async () => {
    const t = await createTestApp()
    onTestFinished(() => t.close())
    await t.inject({ method: 'POST', url: '/users', payload: { username: 'dana', password: 'password123' } })
    const database = (await t.pool.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db
    const url = new URL(t.config.DATABASE_URL)
    url.pathname = `/${database}`
    const run = (...args: string[]) =>
      spawnSync(
        process.execPath,
        ['--conditions=development', '--import', 'tsx', 'src/main.ts', 'promote-admin', ...args],
        {
          cwd: apiDir,
          encoding: 'utf8',
          env: { ...process.env, DATABASE_URL: url.toString(), LOG_LEVEL: 'info' },
          timeout: 60_000,
        },
      )
    const promoted = run('DANA')
    expect(promoted.status, promoted.stderr).toBe(0)
    expect(promoted.stdout).toContain('user promoted to admin')
    expect(await role(t, 'dana')).toBe('admin')

    const unknown = run('nobody')
    expect(unknown.status).toBe(1)
    expect(unknown.stdout).toContain('no such user')
  })
})
