import { createServer, type Server } from 'node:http'
import closeWithGrace from 'close-with-grace'
import { type Logger, pino } from 'pino'
import { ConfigError } from '../config/parse-environment.js'
import { serializeError } from '../error-serializer.js'

/**
 * A service's settings from its environment; a bad setting ends the process with the message alone
 * (it names the variable and what it takes), as a supervisor's log should show it.
 */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(err.message)
    process.exit(1)
  }
}

/** A service's JSON logger: its name on every line, secrets redacted, errors with causes. */
export function createServiceLogger(options: { service: string; level: string; redact: string[] }): Logger {
  return pino({
    level: options.level,
    base: { service: options.service },
    redact: ['*.password', '*.authorization', ...options.redact],
    serializers: { err: serializeError },
  })
}

/** What `/metrics` serves: prom-client's `Registry` satisfies it. */
export interface MetricsSource {
  contentType: string
  metrics(): Promise<string>
}

/** A readiness answer: `ready` picks 200 or 503, `body` says why. */
export interface ReadinessReport {
  ready: boolean
  body: unknown
}

/** `/healthz` (process alive), `/readyz` (200 or 503 with each dependency named), `/metrics`. */
export function createHealthServer(options: {
  registry: MetricsSource
  readiness: () => Promise<ReadinessReport>
}): Server {
  const { registry, readiness } = options
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
      response.end(JSON.stringify(body))
    }
    if (request.method !== 'GET' && request.method !== 'HEAD')
      return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' })
    if (path === '/healthz') return json(200, { status: 'ok' })
    if (path === '/readyz') {
      readiness().then(
        (report) => json(report.ready ? 200 : 503, report.body),
        (err: unknown) => json(503, { status: 'unready', error: String(err) }),
      )
      return
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': registry.contentType })
          response.end(text)
        },
        (err: unknown) => json(500, { error: String(err) }),
      )
      return
    }
    json(404, { error: 'not found' })
  })
}

export interface Worker {
  /**
   * A failure the process cannot mend by itself: stops as on SIGTERM, then exits 1 so that the
   * supervisor restarts it.
   */
  fail(err: unknown, message: string): void
}

export interface WorkerOptions {
  /** The service's name, in its log lines ("<name> started", "<name> stopped"). */
  name: string
  logger: Logger
  health: Server
  http: { port: number; host: string }
  /** Starts the work; resolves with what the "started" line reports. */
  start(): Promise<Record<string, unknown>>
  /** Stops the work and closes what it opened, within the 30 s grace period. */
  stop(): Promise<void>
}

/**
 * A worker process's life: the health server listens at once (a supervisor sees it starting), the
 * work starts, and SIGTERM, SIGINT or an uncaught error stop it gracefully: the health server
 * first, then the work, within 30 s.
 */
export function runWorker(options: WorkerOptions): Worker {
  const { name, logger, health, http } = options
  let fatal = false
  const worker: Worker = {
    fail(err, message) {
      if (fatal) return
      fatal = true
      logger.fatal({ err }, message)
      process.kill(process.pid, 'SIGTERM')
    },
  }

  closeWithGrace({ delay: 30_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down')
    health.close()
    await options.stop()
    logger.info(`${name} stopped`)
    // close-with-grace exits 1 when the handler throws: a supervisor must see the failure.
    if (fatal) throw new Error(`the ${name} stopped for good`)
  })

  health.listen(http.port, http.host, () => {
    logger.info({ port: http.port }, 'health server listening')
  })
  options.start().then(
    (fields) => logger.info(fields, `${name} started`),
    (err: unknown) => worker.fail(err, `${name} failed to start`),
  )
  return worker
}
