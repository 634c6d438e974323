import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, loadMigrateConfig } from '../src/config.js'

const SECRET = 's'.repeat(32)

function issues(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.issues
    throw err
  }
  return []
}

describe('config', () => {
  it('refuses to start without JWT_SECRET or with one shorter than 32 bytes, whatever NODE_ENV says', () => {
    expect(issues({})).toEqual([expect.stringMatching(/^JWT_SECRET: is required/)])
    expect(issues({ NODE_ENV: 'production', JWT_SECRET: '' })).toEqual([expect.stringMatching(/^JWT_SECRET/)])
    expect(issues({ NODE_ENV: 'test' })).toEqual([expect.stringMatching(/^JWT_SECRET: is required/)])
    expect(issues({ JWT_SECRET: 's'.repeat(31) })).toEqual([expect.stringMatching(/at least 32 bytes/)])
    // Bytes, not characters: 16 × "é" is 32 bytes.
    expect(issues({ JWT_SECRET: 'é'.repeat(16) })).toEqual([])
  })

  it('names a missing JWT_SECRET beside the other problems', () => {
    expect(issues({ ADMIN_USERNAME: 'root' })).toEqual([
      expect.stringMatching(/^ADMIN_PASSWORD: /),
      expect.stringMatching(/^JWT_SECRET: is required/),
    ])
  })

  it('lets overrides win over the environment, checked like it', () => {
    expect(loadConfig({ JWT_SECRET: SECRET, PORT: '8080' }, { PORT: '9090' }).PORT).toBe(9090)
    expect(() => loadConfig({ JWT_SECRET: SECRET }, { JWT_SECRET: 'short' })).toThrow(/at least 32 bytes/)
  })

  it('has loopback defaults and coerces numbers', () => {
    const config = loadConfig({
      JWT_SECRET: SECRET,
      PORT: '8080',
      BCRYPT_COST: '10',
      KAFKA_BROKERS: 'a:1, b:2',
    })
    expect(config).toMatchObject({
      PORT: 8080,
      HOST: '0.0.0.0',
      BCRYPT_COST: 10,
      JWT_EXPIRES_IN: 3600,
      KAFKA_BROKERS: ['a:1', 'b:2'],
      CORS_ORIGIN: false,
      DETECTIONS_STORE_URL: 'postgres://intellisite:intellisite@127.0.0.1:25432/intellisite_detections',
    })
  })

  it('takes the detections store from DETECTIONS_STORE_URL, else MONGO_URL, else local PostgreSQL', () => {
    const base = { JWT_SECRET: SECRET }
    const pick = (env: Record<string, string>) => loadConfig({ ...base, ...env }).DETECTIONS_STORE_URL
    expect(pick({ MONGO_URL: 'mongodb://m:27017/x' })).toBe('mongodb://m:27017/x')
    expect(pick({ MONGO_URL: 'mongodb://m:27017/x', DETECTIONS_STORE_URL: 'postgres://p/db' })).toBe(
      'postgres://p/db',
    )
    expect(pick({ MONGO_URL: 'mongodb://m:27017/x', DETECTIONS_STORE_URL: '' })).toBe('mongodb://m:27017/x')
    expect(issues({ ...base, DETECTIONS_STORE_URL: 'mysql://x/y' })[0]).toMatch(/^DETECTIONS_STORE_URL/)
  })

  it('says which variable chose the detections store, so main.ts can warn about MONGO_URL', () => {
    const source = (env: Record<string, string>) =>
      loadConfig({ JWT_SECRET: SECRET, ...env }).detectionsStoreSource
    expect(source({})).toBe('default')
    expect(source({ MONGO_URL: 'mongodb://m/x' })).toBe('MONGO_URL')
    expect(source({ MONGO_URL: 'mongodb://m/x', DETECTIONS_STORE_URL: 'postgres://p/db' })).toBe(
      'DETECTIONS_STORE_URL',
    )
  })

  it('reports every invalid variable at once', () => {
    const found = issues({
      JWT_SECRET: SECRET,
      PORT: 'eighty',
      BCRYPT_COST: '3',
      JWT_EXPIRES_IN: '-5',
      DATABASE_URL: 'nope',
      LISTEN_BACKLOG: '0',
    })
    expect(found.map((issue) => issue.split(':')[0]).sort()).toEqual([
      'BCRYPT_COST',
      'DATABASE_URL',
      'JWT_EXPIRES_IN',
      'LISTEN_BACKLOG',
      'PORT',
    ])
    expect(loadConfig({ JWT_SECRET: SECRET }).LISTEN_BACKLOG).toBe(4096)
  })

  it('parses CORS_ORIGIN as off, any, or a list', () => {
    expect(loadConfig({ JWT_SECRET: SECRET, CORS_ORIGIN: '*' }).CORS_ORIGIN).toBe(true)
    expect(loadConfig({ JWT_SECRET: SECRET, CORS_ORIGIN: 'false' }).CORS_ORIGIN).toBe(false)
    expect(
      loadConfig({ JWT_SECRET: SECRET, CORS_ORIGIN: 'https://a.test, https://b.test' }).CORS_ORIGIN,
    ).toEqual(['https://a.test', 'https://b.test'])
  })

  it('lets the migrate command run without the API secrets', () => {
    expect(loadMigrateConfig({ DATABASE_URL: 'postgres://u:p@db:5432/x' }).DATABASE_URL).toBe(
      'postgres://u:p@db:5432/x',
    )
  })
})
