// Composition root: the only module that reads the environment, opens connections and listens.

import { createKafkaLogCreator } from '@intellisite/common'
import { createDetectionsRepository } from '@intellisite/detections-store'
import closeWithGrace from 'close-with-grace'
import { Kafka, logLevel } from 'kafkajs'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import { Registry } from 'prom-client'
import { createAlertsFeature } from './alerts/index.js'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, loadMigrateConfig } from './config.js'
import { createLogger } from './logger.js'
import { runMigrations, runMigrationsWhenUp } from './users/migrate.js'

function databaseName(mongoUrl: string): string {
  const name = new URL(mongoUrl).pathname.replace(/^\//, '')
  return name === '' ? 'intellisite' : decodeURIComponent(name)
}

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

async function main(): Promise<void> {
  const config = loadConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL)
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 })
  pool.on('error', (err) => logger.warn({ err }, 'idle PostgreSQL client failed'))

  // Idempotent and serialised across replicas, so every start may run them (compose also runs `migrate` first).
  const applied = await runMigrations(pool)
  logger.info({ applied: applied.map((m) => `${m.version}.${m.name}`) }, 'database migrations applied')

  const mongo = new MongoClient(config.MONGO_URL)
  await mongo.connect()
  const repository = createDetectionsRepository(mongo.db(databaseName(config.MONGO_URL)))
  await repository.ensureIndexes()

  const kafka = new Kafka({
    clientId: 'intellisite-api',
    brokers: config.KAFKA_BROKERS,
    logLevel: logLevel.WARN,
    logCreator: createKafkaLogCreator(logger),
  })
  const metrics = new Registry()
  const alerts = createAlertsFeature({ kafka, config, logger, registry: metrics })

  const app = await buildApp({ config, pool, repository, logger, alerts, metrics })

  closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down')
    await app.close()
    await Promise.allSettled([pool.end(), mongo.close()])
  })

  // This process's one alerts consumer starts before traffic; /readyz reports it as `kafka`.
  await alerts.start()
  await app.listen({ host: config.HOST, port: config.PORT })
}

try {
  if (process.argv[2] === 'migrate') await migrate()
  else await main()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  throw err
}
