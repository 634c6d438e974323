import { fileURLToPath } from 'node:url'
import { type AppliedMigration, migrateUnderLock, retry } from '@intellisite/common'
import type { Pool } from 'pg'

const MIGRATIONS = fileURLToPath(new URL('../../migrations/*.sql', import.meta.url))
/** Any constant works: it only has to be the same for every API replica. */
const MIGRATION_LOCK = 0x1e7e11

export type { AppliedMigration }

/** Brings the users schema to the newest version; replicas may run it at once. */
export function runMigrations(pool: Pool): Promise<AppliedMigration[]> {
  return migrateUnderLock(pool, {
    migrationPattern: MIGRATIONS,
    schemaTable: 'schema_version',
    lock: MIGRATION_LOCK,
  })
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
