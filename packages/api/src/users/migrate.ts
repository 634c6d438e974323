import { fileURLToPath } from 'node:url'
import { retry } from '@intellisite/common'
import type { Pool } from 'pg'
import Postgrator from 'postgrator'

const MIGRATIONS = fileURLToPath(new URL('../../migrations/*.sql', import.meta.url))
/** Any constant works: it only has to be the same for every API replica. */
const MIGRATION_LOCK = 0x1e7e11

export interface AppliedMigration {
  version: number
  name: string
}

/**
 * Brings the schema to the newest version. Several replicas may start at once: a session-level
 * advisory lock serialises them, so the second one finds the work done instead of failing halfway.
 */
export async function runMigrations(pool: Pool): Promise<AppliedMigration[]> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db')
      const postgrator = new Postgrator({
        migrationPattern: MIGRATIONS,
        driver: 'pg',
        database: rows[0]?.db ?? '',
        schemaTable: 'schema_version',
        execQuery: (query) => client.query(query),
      })
      const applied = await postgrator.migrate()
      return applied.map((m) => ({ version: m.version, name: m.name }))
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } finally {
    client.release()
  }
}

/** Errors of a server that is not up yet (refused, reset, or still starting), worth waiting for. */
const NOT_YET_UP = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  '57P03',
  '08006',
  '08001',
])

function notYetUp(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code === 'string' && NOT_YET_UP.has(code)) return true
  const errors = (err as { errors?: unknown } | undefined)?.errors
  return Array.isArray(errors) && errors.length > 0 && errors.every(notYetUp)
}

/**
 * `runMigrations`, retried while PostgreSQL is not accepting connections yet, for up to `waitMs`.
 * A one-shot migration container must not fail because it started a moment before the database.
 */
export function runMigrationsWhenUp(
  pool: Pool,
  { waitMs, onRetry }: { waitMs: number; onRetry?: (err: unknown, delayMs: number) => void },
): Promise<AppliedMigration[]> {
  return retry(() => runMigrations(pool), {
    initialMs: 250,
    maxMs: 5_000,
    withinMs: waitMs,
    retryable: notYetUp,
    onRetry: (err, _attempt, delayMs) => onRetry?.(err, delayMs),
  })
}
