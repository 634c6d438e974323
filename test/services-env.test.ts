// What `npm run services:env` prints, as a shell that evaluates it would see it.
import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { chooseDetectionsStore } from '../packages/common/src/config/detections-store.js'
import { parseExports, SERVICES_SCRIPT } from '../scripts/services/services-env.js'

function services(args: string[], env: Record<string, string> = {}) {
  const { DETECTIONS_STORE_URL: _store, DATABASE_URL: _users, ...rest } = process.env
  return spawnSync('bash', [SERVICES_SCRIPT, ...args], { env: { ...rest, ...env }, encoding: 'utf8' })
}

describe('services:env', () => {
  it('names the PostgreSQL detections store, so MONGO_URL beside it never chooses the store', () => {
    const exported = parseExports(services(['env']).stdout)
    expect(exported.MONGO_URL).toMatch(/^mongodb:\/\//)
    expect(exported.DETECTIONS_STORE_URL).toMatch(/^postgres:\/\/.*\/intellisite_detections$/)
    expect(chooseDetectionsStore(exported)).toEqual({
      url: exported.DETECTIONS_STORE_URL,
      source: 'DETECTIONS_STORE_URL',
    })
  })

  it('puts the detections beside an external users database, and keeps a store the caller named', () => {
    const external = parseExports(
      services(['env'], { DATABASE_URL: 'postgres://u:p@db.example:5432/users?sslmode=require' }).stdout,
    )
    expect(external.DETECTIONS_STORE_URL).toBe(
      'postgres://u:p@db.example:5432/intellisite_detections?sslmode=require',
    )
    const named = parseExports(services(['env'], { DETECTIONS_STORE_URL: 'mongodb://m:27017/x' }).stdout)
    expect(named.DETECTIONS_STORE_URL).toBe('mongodb://m:27017/x')
  })

  it('`up` refuses a service it does not know, before starting anything', () => {
    const result = services(['up', 'redis'])
    expect(result.status).not.toBe(0)
    expect(result.stderr).toMatch(/unknown service 'redis'/)
  })
})
