import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import pg, { type Pool } from 'pg'
import { runMigrations } from '../users/migrate.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The users database (users, rules, webhooks and the rules outbox). */
    pool: Pool
  }
}

export interface PostgresPluginOptions {
  connectionString: string
  /** A pool the caller opened, migrated and ends after the app; without one the plugin does all three. */
  pool?: Pool
}

export const postgresPlugin = fp<PostgresPluginOptions>(
  async (app, options) => {
    const pool = options.pool ?? (await openPool(options.connectionString, app.log))
    if (options.pool === undefined) app.addHook('onClose', () => pool.end())
    app.decorate('pool', pool)
    app.readiness.checks.postgres = async () => {
      await pool.query('SELECT 1')
      return 'up'
    }
  },
  { name: 'postgres', dependencies: ['readiness'] },
)

async function openPool(connectionString: string, log: FastifyBaseLogger): Promise<Pool> {
  const pool = new pg.Pool({ connectionString, max: 10 })
  pool.on('error', (err) => log.warn({ err }, 'idle PostgreSQL client failed'))
  // Idempotent and serialised across replicas, so every start may run them (compose also runs `migrate` first).
  const applied = await runMigrations(pool)
  log.info({ applied: applied.map((m) => `${m.version}.${m.name}`) }, 'database migrations applied')
  return pool
}
