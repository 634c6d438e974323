// `npm start`: the whole system on this machine without Docker or a build step.
// Starts the local Kafka and PostgreSQL (scripts/services/services.sh; the MongoDB-protocol server
// too when the detections go to MongoDB), then the indexer, the API and the producer from their sources, waits until they are ready, prints where
// to look, and on Ctrl-C, SIGINT or SIGTERM stops the three children (producer first, so every
// detection it sent is still indexed) while leaving the services running for the next start. The
// API and the indexer listen on loopback unless HOST is set.
//
// API_REPLICAS=N runs N API processes, each on a loopback port of its own, behind Debian's
// HAProxy (installed on first use) on the API's port: docker/haproxy/haproxy.cfg.template.
//
//   npm start -- [--down] [--no-producer] [--raw-logs] [-- <producer flags, e.g. --rate 20>]
//
// Every service setting comes from the environment, as in production (see .env.example); unset
// connection variables default to the local services.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SERVICE_PORTS } from '../packages/common/src/config/base-env.js'
import { chooseDetectionsStore, redactUrlPassword } from '../packages/common/src/config/detections-store.js'
import { replicaServers, startHaproxy } from './haproxy/haproxy.js'
import { parseExports, SERVICES_SCRIPT } from './services/services-env.js'

const root = fileURLToPath(new URL('..', import.meta.url))

const { values: flags, positionals: producerArgs } = parseArgs({
  options: {
    down: { type: 'boolean', default: false },
    'no-producer': { type: 'boolean', default: false },
    'raw-logs': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: true,
  strict: true,
})
if (flags.help) {
  console.log(`Usage: npm start -- [--down] [--no-producer] [--raw-logs] [-- <producer flags>]
  --down          also stop the local Kafka/MongoDB/PostgreSQL on exit (default: leave them running)
  --no-producer   start only the indexer and the API (feed them with another producer)
  --raw-logs      print the services' JSON log lines unformatted
  -- <flags>      passed to the producer, e.g. -- --rate 20 --seed demo (see its --help)
Environment: API_REPLICAS=N runs N API processes behind HAProxy on PORT (docs/deployment.md).`)
  process.exit(0)
}

// `npm start | tee log` on Ctrl-C: tee dies first; the children must still be stopped in order.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})

const color = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text)
const say = (text: string) => console.log(`${paint(1, '[pipeline]')} ${text}`)

// ------------------------------------------------------------------------------------ environment
const readServicesEnv = () =>
  parseExports(execFileSync('bash', [SERVICES_SCRIPT, 'env'], { encoding: 'utf8' }))

// The detections store, by the services' own rule on the caller's environment: DETECTIONS_STORE_URL,
// else MONGO_URL, else PostgreSQL (database intellisite_detections beside the users', created on
// first use).
const chosen = chooseDetectionsStore(process.env)
const store =
  chosen.source === 'default'
    ? { ...chosen, url: readServicesEnv().DETECTIONS_STORE_URL ?? chosen.url }
    : chosen
const storeBackend = /^mongodb(\+srv)?:$/.test(new URL(store.url).protocol) ? 'MongoDB' : 'PostgreSQL'
const storeLine = `detections store: ${storeBackend} at ${redactUrlPassword(store.url)}`
if (store.source === 'default') say(`${storeLine} (the default; DETECTIONS_STORE_URL names another)`)
else if (store.source === 'DETECTIONS_STORE_URL') say(`${storeLine} (from DETECTIONS_STORE_URL)`)
else say(paint(33, `${storeLine} (from MONGO_URL, as DETECTIONS_STORE_URL is not set)`))

// PostgreSQL always (users); the MongoDB-protocol server only for a MongoDB store.
const needed = storeBackend === 'MongoDB' ? ['kafka', 'mongo', 'postgres'] : ['kafka', 'postgres']
say(
  `starting the local services (Kafka, PostgreSQL${storeBackend === 'MongoDB' ? ', MongoDB-protocol server' : ''})…`,
)
try {
  execFileSync('bash', [SERVICES_SCRIPT, 'up', ...needed], { stdio: ['ignore', 'inherit', 'inherit'] })
} catch {
  say(paint(31, 'the local services did not start (their log tail is above); nothing else was started'))
  process.exit(1)
}

const env: NodeJS.ProcessEnv = { ...readServicesEnv(), ...process.env }
// The children make the same choice: the default is named for them (services:env names it too);
// a MONGO_URL choice reaches them as the caller made it, so that each says so in its own log.
if (store.source === 'default') env.DETECTIONS_STORE_URL = store.url
else if (store.source === 'MONGO_URL') delete env.DETECTIONS_STORE_URL
const apiPort = Number(env.PORT ?? SERVICE_PORTS.api)
// Unset: one API on PORT, no proxy. Any number (1 included): that many replicas behind HAProxy.
const replicaCount = env.API_REPLICAS === undefined || env.API_REPLICAS === '' ? 0 : Number(env.API_REPLICAS)
if (!Number.isInteger(replicaCount) || replicaCount < 0 || replicaCount > 16) {
  say(paint(31, `API_REPLICAS must be a whole number from 1 to 16 (got ${env.API_REPLICAS})`))
  process.exit(1)
}
const indexerPort = Number(env.INDEXER_PORT ?? SERVICE_PORTS.indexer)
env.PORT = String(apiPort)
env.INDEXER_PORT = String(indexerPort)
// The local services listen on loopback only, and so does what runs on them: a development machine
// should not serve its API (and the indexer's metrics) to the network by default. The services'
// own defaults stay 0.0.0.0, which is what a container needs.
env.HOST ||= '127.0.0.1'
env.INDEXER_HOST ||= env.HOST
const notifierPort = Number(env.NOTIFIER_PORT ?? SERVICE_PORTS.notifier)
env.NOTIFIER_PORT = String(notifierPort)
env.NOTIFIER_HOST ||= env.HOST
// Webhooks registered on a development machine usually point at a receiver on it: let them (and
// plain http) through, for the API's registration check and the notifier alike, and say so.
if (env.WEBHOOK_ALLOW_PRIVATE === undefined) {
  env.WEBHOOK_ALLOW_PRIVATE = 'true'
  say(
    'WEBHOOK_ALLOW_PRIVATE=true for this run: webhooks may target loopback/private addresses and plain http ' +
      '(never in production; set WEBHOOK_ALLOW_PRIVATE=false to check as production does)',
  )
}
const producerCounted =
  Boolean(env.PRODUCER_COUNT) || producerArgs.some((arg) => arg === '--count' || arg.startsWith('--count='))
if (!env.JWT_SECRET) {
  env.JWT_SECRET = randomBytes(32).toString('base64url')
  say('JWT_SECRET is not set: generated a random one for this run (tokens stop working when it restarts)')
}

// --------------------------------------------------------------------------------------- children
interface Child {
  name: string
  process: ChildProcess
  exited: Promise<number | null>
  stopping: boolean
}

const children: Child[] = []
let shuttingDown = false

const levelNames: Record<number, [string, number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 90],
  30: ['INFO ', 32],
  40: ['WARN ', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 31],
}
const hiddenKeys = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name', 'service', 'err'])

/** A pino JSON line as `12:00:01.234 INFO  message {extra}`; anything else unchanged. */
function formatLine(line: string): string {
  if (flags['raw-logs'] || !line.startsWith('{')) return line
  try {
    const entry = JSON.parse(line) as Record<string, unknown>
    const [level, levelColor] = levelNames[Number(entry.level)] ?? ['     ', 0]
    const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : ''
    const extra = Object.fromEntries(Object.entries(entry).filter(([key]) => !hiddenKeys.has(key)))
    const extraText =
      Object.keys(extra).length > 0 ? ` ${paint(90, JSON.stringify(extra).slice(0, 300))}` : ''
    const err = entry.err as { message?: string; stack?: string } | undefined
    const errText = err ? `\n    ${(err.stack ?? err.message ?? '').split('\n').join('\n    ')}` : ''
    return `${paint(90, time)} ${paint(levelColor, level)} ${entry.msg ?? ''}${extraText}${errText}`
  } catch {
    return line
  }
}

// Loaded into every child: it stops the child when this script is gone, even after a SIGKILL.
const exitWithParent = fileURLToPath(new URL('./exit-with-parent.ts', import.meta.url))

function start(
  name: string,
  prefixColor: number,
  packageDir: string,
  args: string[] = [],
  childEnv: NodeJS.ProcessEnv = env,
): Child {
  const child = spawn(
    process.execPath,
    [
      // kafkajs 2.2.4 sets timers with negative delays, and Node 24 prints a plain-text warning for
      // each; only that warning type is disabled, every other one still prints.
      '--disable-warning=TimeoutNegativeWarning',
      '--conditions=development',
      '--import',
      'tsx',
      '--import',
      exitWithParent,
      `packages/${packageDir}/src/main.ts`,
      ...args,
    ],
    // Own process group: a terminal Ctrl-C reaches only this script, which then stops the children
    // in order instead of all at once.
    { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  )
  return track(name, prefixColor, child)
}

/** Prefixes a child's output, and stops the others when it exits unless it may. */
function track(name: string, prefixColor: number, child: ChildProcess): Child {
  const prefix = paint(prefixColor, `[${name}]`.padEnd(10))
  for (const stream of [child.stdout, child.stderr]) {
    if (stream)
      createInterface({ input: stream }).on('line', (line) => console.log(`${prefix} ${formatLine(line)}`))
  }
  const entry: Child = {
    name,
    process: child,
    exited: once(child, 'exit').then(([code, signal]) => (signal ? 128 : (code as number | null))),
    stopping: false,
  }
  void entry.exited.then((code) => {
    if (entry.stopping || shuttingDown) return
    const replicasLeft = children.filter(
      (c) =>
        c.name.startsWith('api-') &&
        c !== entry &&
        c.process.exitCode === null &&
        c.process.signalCode === null,
    )
    if (name.startsWith('api-') && replicasLeft.length > 0) {
      say(
        paint(
          33,
          `${name} exited (code ${code}); HAProxy took it out of the pool and ${replicasLeft.map((c) => c.name).join(', ')} keep serving`,
        ),
      )
      return
    }
    if (name === 'producer' && code === 0) {
      say(
        producerCounted
          ? 'the producer finished (it sent its PRODUCER_COUNT / --count); the indexer and API keep running'
          : 'the producer stopped (signalled from outside); the indexer and API keep running',
      )
      return
    }
    say(paint(31, `${name} exited unexpectedly (code ${code}); stopping the others`))
    void shutdown(1)
  })
  children.push(entry)
  return entry
}

async function stop(child: Child, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  child.stopping = true
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  child.process.kill(signal)
  const result = await Promise.race([child.exited.then(() => 'exited'), sleep(graceMs).then(() => 'timeout')])
  if (result === 'timeout') {
    say(`${child.name} did not stop within ${graceMs / 1000}s; killing it`)
    child.process.kill('SIGKILL')
    await child.exited
  }
}

async function shutdown(code: number): Promise<never> {
  if (shuttingDown) return new Promise<never>(() => {})
  shuttingDown = true
  say('stopping: producer first, then the indexer and the API…')
  const producer = children.find((c) => c.name === 'producer')
  if (producer) await stop(producer, 10_000)
  // HAProxy first stops listening (its soft stop) and exits once the replicas have ended their
  // streams: a client that reconnects meanwhile is refused instead of sent to a stopping replica.
  const proxy = children.find((c) => c.name === 'haproxy')
  const proxyStopped = proxy ? stop(proxy, 45_000, 'SIGUSR1') : Promise.resolve()
  await Promise.all(children.filter((c) => c.name !== 'producer' && c !== proxy).map((c) => stop(c, 35_000)))
  await proxyStopped
  if (flags.down) {
    say('stopping the local services (--down)…')
    execFileSync('bash', [SERVICES_SCRIPT, 'down'], { stdio: ['ignore', 'inherit', 'inherit'] })
  } else {
    say('the local services are still running for the next start; `npm run services:down` stops them')
  }
  process.exit(code)
}

// A terminal's Ctrl-C reaches this script twice: from the terminal (same process group) and forwarded
// by npm, which passes SIGINT and SIGTERM on to the script it runs. Only a signal that comes later
// than that echo counts as the user's second one.
let firstSignalAt = 0
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (shuttingDown) {
      if (Date.now() - firstSignalAt < 1_000) return
      say('second signal: killing the children now')
      for (const child of children) child.process.kill('SIGKILL')
      process.exit(130)
    }
    firstSignalAt = Date.now()
    void shutdown(0)
  })
}
// Last resort if this script dies of an error: never leave detached children behind.
process.on('exit', () => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL')
})

async function waitReady(name: string, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline && !shuttingDown) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      if (response.ok) return
      last = `${response.status} ${await response.text()}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(250)
  }
  if (shuttingDown) return new Promise(() => {})
  say(paint(31, `${name} not ready after ${timeoutMs / 1000}s (${url}: ${last.slice(0, 300)})`))
  return shutdown(1)
}

// -------------------------------------------------------------------------------------- dashboard
/**
 * The API serves the dashboard's built files; a fresh clone has none yet. Built once here (a few
 * seconds); `pnpm --filter @intellisite/dashboard build` refreshes them after editing the page.
 */
function ensureDashboardBuilt(): void {
  const dir = env.DASHBOARD_DIR ?? `${root}packages/dashboard/dist`
  if (existsSync(`${dir}/index.html`)) return
  say('building the dashboard (first start)…')
  try {
    execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn'], {
      cwd: `${root}packages/dashboard`,
      stdio: ['ignore', 'inherit', 'inherit'],
    })
  } catch {
    say(paint(33, 'the dashboard did not build; the API starts anyway and /dashboard/ says so'))
  }
}

// -------------------------------------------------------------------------------------------- run
ensureDashboardBuilt()
/** A loopback port nothing listens on right now, for a replica. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject()))
    })
  })
}

/**
 * API_REPLICAS=N: N API processes on loopback ports of their own, the same JWT_SECRET and
 * databases, and HAProxy on the API's port in front of them. Each replica sees the client's
 * address in X-Forwarded-For, which HAProxy sets (never appends), hence TRUST_PROXY.
 */
async function startReplicas(count: number): Promise<{ name: string; port: number }[]> {
  const replicas: { name: string; port: number }[] = []
  for (let i = 1; i <= count; i++) replicas.push({ name: `api-${i}`, port: await freePort() })
  for (const { name, port } of replicas) {
    start(name, 35, 'api', [], { ...env, PORT: String(port), TRUST_PROXY: env.TRUST_PROXY || 'true' })
  }
  const dir = mkdtempSync(join(tmpdir(), 'intellisite-haproxy-'))
  const socket = join(dir, 'admin.sock')
  try {
    const proxy = startHaproxy(join(dir, 'haproxy.cfg'), {
      bind: `${env.HOST}:${apiPort}`,
      servers: replicaServers(replicas.map((r) => r.port)),
      global: [`stats socket ${socket} mode 600 level admin`],
    })
    track('haproxy', 32, proxy)
  } catch (err) {
    say(paint(31, `HAProxy did not start: ${(err as Error).message}`))
    return shutdown(1)
  }
  say(
    `HAProxy on :${apiPort} in front of ${replicas.map((r) => `${r.name} (:${r.port})`).join(', ')}; ` +
      `config ${join(dir, 'haproxy.cfg')}, runtime API: echo 'show stat' | socat - ${socket}`,
  )
  return replicas
}

ensureDashboardBuilt()
if (replicaCount === 0) {
  say(`starting the indexer (:${indexerPort}) and the API (:${apiPort}) from source…`)
  start('indexer', 36, 'indexer')
  start('api', 35, 'api')
} else {
  say(
    `starting the indexer (:${indexerPort}) and ${replicaCount} API replica(s) behind HAProxy (:${apiPort})…`,
  )
  start('indexer', 36, 'indexer')
}
const replicas = replicaCount > 0 ? await startReplicas(replicaCount) : []
say(`starting the notifier (:${notifierPort}) from source…`)
start('notifier', 34, 'notifier')
await Promise.all([
  waitReady('indexer', `http://127.0.0.1:${indexerPort}/readyz`, 120_000),
  ...replicas.map((r) => waitReady(r.name, `http://127.0.0.1:${r.port}/readyz`, 120_000)),
  waitReady('api', `http://127.0.0.1:${apiPort}/readyz`, 120_000),
  waitReady('notifier', `http://127.0.0.1:${notifierPort}/readyz`, 120_000),
])
if (!flags['no-producer']) {
  start('producer', 33, 'producer', producerArgs)
}

const base = `http://localhost:${apiPort}`
const json = "-H 'content-type: application/json'"
const credentials = `'{"username":"demo","password":"demo-password"}'`
say(
  [
    paint(32, 'ready.'),
    `  dashboard        ${base}/dashboard/   (create an account on the page)`,
    `  Swagger UI       ${base}/docs   (Authorize with a username/password created below)`,
    `  OpenAPI          ${base}/docs/json`,
    `  alert stream     ${base}/alerts (SSE, bearer token or ?access_token=)`,
    ...(replicas.length > 0
      ? [
          `  replicas         ${replicas.map((r) => `${r.name} http://localhost:${r.port}`).join(', ')} (behind HAProxy on :${apiPort})`,
        ]
      : []),
    `  indexer metrics  http://localhost:${indexerPort}/metrics`,
    `  notifier metrics http://localhost:${notifierPort}/metrics   (webhooks: see docs/webhooks.md)`,
    '',
    '  Try it from another terminal:',
    `    curl -s ${json} -d ${credentials} ${base}/users`,
    `    TOKEN=$(curl -s ${json} -d ${credentials} ${base}/auth/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
    `    curl -s -H "authorization: Bearer $TOKEN" '${base}/detections?limit=3'`,
    `    curl -s -H "authorization: Bearer $TOKEN" ${base}/stats`,
    `    curl -N -H "authorization: Bearer $TOKEN" ${base}/alerts`,
    '',
    `  Ctrl-C stops the indexer, API and producer${flags.down ? ' and the local services' : '; the local services keep running'}.`,
  ].join('\n'),
)
