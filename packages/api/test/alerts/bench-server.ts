// API side of bench/alerts.ts (lives here so it resolves the API's dependencies): the alerts
// feature in a minimal Fastify app (JWT + zod type provider, as in the real API), on the topic
// given in ALERTS_TOPIC, composed here from the feature's parts as `createAlertsFeature` composes
// them. BENCH_FANOUT=naive swaps in the reference fan-out (one write per client per alert); route,
// auth, consumer and clients stay the same. BENCH_DETACH_SOCKETS=0 leaves the streams' sockets
// with Node's HTTP server (request and response kept alive). Prints one JSON line
// `{"port", "token"}` when listening; GET /bench/stats answers {clients, rss, heapUsed, ...};
// POST /bench/raw-sweep times bare write loops over the open streams (the floor of any fan-out).
// BENCH_LISTEN_PORT: a fixed port (a replica restarted behind a proxy keeps its place).
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { LOCAL_KAFKA_BROKERS } from '@intellisite/common'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import { Kafka, logLevel } from 'kafkajs'
import pino from 'pino'
import { Registry } from 'prom-client'
import { createAlertsMetrics } from '../../src/alerts/alerts-metrics.js'
import { createStreamOpener } from '../../src/alerts/alerts-stream.js'
import { createAlertsWindow } from '../../src/alerts/alerts-window.js'
import { createCatchUp } from '../../src/alerts/catch-up.js'
import {
  alertsConfigSchema,
  alertsConsumer,
  broadcasterOptions,
  serveAlerts,
} from '../../src/alerts/index.js'
import { createSseBroadcaster } from '../../src/alerts/sse-broadcaster.js'
import { detachFromHttpServer } from '../../src/http/detach-socket.js'
import { authPlugin } from '../../src/plugins/auth.js'
import { errorHandlerPlugin } from '../../src/plugins/error-handler.js'
import { createNaiveBroadcaster } from './naive-broadcaster.js'

const secret = 'bench-secret-bench-secret-bench-secret-42'
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' })
const config = alertsConfigSchema.parse(process.env)
const registry = new Registry()
const kafka = new Kafka({
  clientId: 'alerts-bench-server',
  brokers: (process.env.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS).split(','),
  logLevel: logLevel.NOTHING,
})
const detachSockets = process.env.BENCH_DETACH_SOCKETS !== '0'
const window = createAlertsWindow(config.SSE_REPLAY_WINDOW)
const metrics = createAlertsMetrics(
  registry,
  () => consumer.lag(),
  () => broadcaster.clientCount,
  () => window.size,
)
const broadcaster = (process.env.BENCH_FANOUT === 'naive' ? createNaiveBroadcaster : createSseBroadcaster)(
  broadcasterOptions(config, metrics, logger),
)
const consumer = alertsConsumer({
  kafka,
  config,
  window,
  logger,
  onEntries: (entries) => broadcaster.publish(entries),
})
const catchUp = createCatchUp({ kafka, config, consumer, window, broadcaster, metrics, logger })
const openStream = createStreamOpener({ config, consumer, broadcaster, catchUp, logger })
const feature = serveAlerts({
  consumer,
  broadcaster,
  logger,
  open(request, response, stream) {
    if (detachSockets) detachFromHttpServer(request, response)
    openStream(request.socket, stream)
  },
})
await feature.start()

const app = Fastify({ loggerInstance: logger as FastifyBaseLogger })
app.setValidatorCompiler(validatorCompiler)
app.setSerializerCompiler(serializerCompiler)
await app.register(errorHandlerPlugin)
await app.register(authPlugin, { secret, expiresInSeconds: 3600 })
await app.register(feature.plugin)
// The floor next to which the fan-out is measured: the same sockets, a bare loop of one write each.
const streams = new Set<Socket>()
app.addHook('onRequest', async (request) => {
  if (!request.url.startsWith('/alerts')) return
  const socket = request.raw.socket
  streams.add(socket)
  socket.once('close', () => streams.delete(socket))
})
const HEARTBEAT_CHUNK = Buffer.from('3\r\n:\n\n\r\n')
app.post('/bench/raw-sweep', async () => {
  const passes: number[] = []
  for (let round = 0; round < 21; round++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = performance.now()
    for (const socket of streams) socket.write(HEARTBEAT_CHUNK)
    passes.push(performance.now() - started)
  }
  passes.sort((a, b) => a - b)
  return { sockets: streams.size, medianMs: passes[10], maxMs: passes[20] }
})
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
loopDelay.enable()
app.post('/bench/reset', async () => {
  loopDelay.reset()
  return {}
})
/** This process and its child processes, if any: RSS in bytes and CPU in ms. */
function processTree(): { rss: number; cpuMs: number } {
  let rss = process.memoryUsage.rss()
  let cpuMs = (process.cpuUsage().user + process.cpuUsage().system) / 1000
  const ticks = 10 // USER_HZ is 100 on Linux: one tick is 10 ms
  try {
    const children = readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
    for (const pid of children) {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      rss += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      cpuMs += (Number(fields[11]) + Number(fields[12])) * ticks
    }
  } catch {
    // not Linux, or a child just exited: this process alone
  }
  return { rss, cpuMs }
}
/** The V8 heap (used and reserved) and memory held outside it (Buffers, native objects). */
function heapFigures() {
  const { heapUsed, heapTotal, external } = process.memoryUsage()
  return { heapUsed, heapTotal, external }
}
// What a load balancer checks (bench/replicas.ts puts HAProxy in front of several of these).
app.get('/readyz', async (_request, reply) => reply.code(feature.ready() ? 200 : 503).send({}))
app.get('/bench/stats', async () => {
  const metrics = await registry.getMetricsAsJSON()
  const value = (name: string) =>
    metrics.find((m) => m.name === name)?.values.reduce((a, v) => a + v.value, 0) ?? 0
  return {
    clients: value('alerts_sse_clients_connected'),
    dropped: value('alerts_sse_clients_closed_total'),
    sent: value('alerts_sse_events_sent_total'),
    ...processTree(),
    ...heapFigures(),
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
    flush: metrics.find((m) => m.name === 'alerts_sse_flush_seconds')?.values,
  }
})
// The API's default listen backlog (LISTEN_BACKLOG); BENCH_BACKLOG=511 is Node's own default.
await app.listen({
  host: '127.0.0.1',
  port: Number(process.env.BENCH_LISTEN_PORT ?? 0),
  backlog: Number(process.env.BENCH_BACKLOG ?? 4096),
})
const address = app.server.address()
const port = typeof address === 'object' && address ? address.port : 0
process.stdout.write(
  `${JSON.stringify({ port, token: app.jwt.sign({ sub: 'bench', username: 'bench' }, { expiresIn: 3600 }) })}\n`,
)

const shutdown = async () => {
  await app.close()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
