// The server: the only module that reads the environment, listens and installs graceful shutdown.
// The app's plugins open and close the connections (app.ts).

import closeWithGrace from 'close-with-grace'
import pg from 'pg'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, loadMigrateConfig } from './config.js'
import { createLogger } from './logger.js'
import { runMigrationsWhenUp } from './users/migrate.js'
import { createUsersRepository } from './users/users-repository.js'

async function migrate(): Promise<void> {
  const config = loadMigrateConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL)
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 })
  try {
    const applied = await runMigrationsWhenUp(pool, {
      waitMs: config.MIGRATE_WAIT_MS,
      onRetry: (err, delayMs) => logger.warn({ err, delayMs }, 'PostgreSQL is not accepting connections yet'),
    })
    logger.info({ applied: applied.map((m) => `${m.version}.${m.name}`) }, 'database migrations applied')
  } finally {
    await pool.end()
  }
}

/** `promote-admin <username>`: makes an existing user an admin (migrating first, like `migrate`). */
async function promoteAdmin(username: string | undefined): Promise<void> {
  if (username === undefined || username === '') {
    console.error('usage: promote-admin <username>')
    process.exit(2)
  }
  const config = loadMigrateConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL)
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 })
  try {
    await runMigrationsWhenUp(pool, { waitMs: config.MIGRATE_WAIT_MS })
    const user = await createUsersRepository(pool).promote(username)
    if (!user) {
      logger.error({ username }, 'no such user: sign up first (POST /users), then promote')
      process.exitCode = 1
      return
    }
    logger.info({ userId: user.id, username: user.username }, 'user promoted to admin')
  } finally {
    await pool.end()
  }
}

async function main(): Promise<void> {
  const config = loadConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL)
  // Opens (and on close, closes) the pool, the detections store, Kafka and the alerts stream itself.
  const app = await buildApp({ config, logger })

  closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down')
    await app.close()
  })

  // listen() readies the app first, which starts this process's one alerts consumer before any
  // traffic; /readyz reports it as `kafka`.
  await app.listen({ host: config.HOST, port: config.PORT, backlog: config.LISTEN_BACKLOG })
}

try {
  if (process.argv[2] === 'migrate') await migrate()
  else if (process.argv[2] === 'promote-admin') await promoteAdmin(process.argv[3])
  else await main()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  throw err
}
