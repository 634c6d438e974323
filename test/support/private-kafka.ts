// A Kafka broker of a test's own (scripts/services/services.sh on free ports, state in a temp
// folder), so the test can crash and restart it; the shared broker must never be stopped.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './ports.js'

const SCRIPT = fileURLToPath(new URL('../../scripts/services/services.sh', import.meta.url))
/** services.sh itself gives up after 90 s; this only guards against a hung script. */
const SCRIPT_TIMEOUT_MS = 120_000

export interface PrivateKafka {
  /** `127.0.0.1:<port>`, for KAFKA_BROKERS or `new Kafka({ brokers: [...] })`. */
  readonly brokers: string
  readonly port: number
  /** Data and pid file (INTELLISITE_RUN_DIR); logs are in `logDir`. */
  readonly runDir: string
  readonly logDir: string
  /** The broker's pid while it runs (from its pid file). */
  pid(): number | undefined
  /** `services.sh up` on the same data dir: topics and committed offsets survive. */
  start(): Promise<void>
  /** Graceful: `services.sh down` (SIGTERM, controlled shutdown). */
  stop(): Promise<void>
  /** A crash: SIGKILL, resolves once the process is gone and the port is closed. */
  kill(): Promise<void>
  /**
   * Crash (or stop), stay down `downMs`, start again. Resolves when the broker is up, with when it
   * went down and came back (epoch ms).
   */
  restart(options?: { hard?: boolean; downMs?: number }): Promise<{ downAt: number; upAt: number }>
  /** Stops the broker (SIGKILL if `down` fails) and deletes its folder. Idempotent. */
  destroy(): Promise<void>
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Alive, not a zombie waiting to be reaped (the broker's parent is pid 1 once `up` returns), and
 * still this broker: its command line names our run dir, so a reused pid (or the shared broker)
 * is never signalled.
 */
function brokerAlive(pid: number, runDir: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return false
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(runDir)
  } catch {
    return false
  }
}

/**
 * Stops a private Kafka (SIGKILL when `services.sh down` fails), forgets its exit hook and removes
 * its folder, unless TEST_PRIVATE_KAFKA_KEEP asked to keep it.
 */
async function teardown(options: {
  down: () => Promise<void>
  kill: () => void
  onExit: () => void
  keep: boolean
  root: string
  what: string
}): Promise<void> {
  try {
    await options.down()
  } catch {
    options.kill()
  } finally {
    process.removeListener('exit', options.onExit)
    if (options.keep) console.info(`private ${options.what} folder kept: ${options.root}`)
    else rmSync(options.root, { recursive: true, force: true })
  }
}

/**
 * Starts a private single-node KRaft broker (about 5-10 s; a restart after SIGKILL about 15 s,
 * because the controller keeps the dead broker's registration until its 9 s session expires).
 * Call once per test file (beforeAll) and `destroy()` it in afterAll; a worker that exits without
 * doing so still SIGKILLs the broker and removes its folder.
 */
export async function startPrivateKafka(): Promise<PrivateKafka> {
  const root = mkdtempSync(join(tmpdir(), 'intellisite-private-kafka-'))
  const runDir = join(root, 'run')
  const logDir = join(root, 'logs')
  const port = await freePort()
  let controllerPort = await freePort()
  while (controllerPort === port) controllerPort = await freePort()
  const pidFile = join(runDir, 'kafka.pid')
  // For debugging: keep the data and the broker's log (logs/kafka.log, truncated at each start).
  const keep = Boolean(process.env.TEST_PRIVATE_KAFKA_KEEP)

  // Only Kafka: MONGO_URL and DATABASE_URL set mark the stores external (never started or stopped
  // here), KAFKA_BROKERS unset makes services.sh start (and stop) the broker of this run dir.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MONGO_URL: process.env.MONGO_URL || 'mongodb://external.invalid/unused',
    DATABASE_URL: process.env.DATABASE_URL || 'postgres://external.invalid/unused',
    INTELLISITE_RUN_DIR: runDir,
    INTELLISITE_LOG_DIR: logDir,
    INTELLISITE_KAFKA_PORT: String(port),
    INTELLISITE_KAFKA_CONTROLLER_PORT: String(controllerPort),
  }
  delete env.KAFKA_BROKERS

  const run = (verb: 'up' | 'down') =>
    new Promise<void>((resolve, reject) => {
      execFile('bash', [SCRIPT, verb], { env, timeout: SCRIPT_TIMEOUT_MS }, (err, _stdout, stderr) => {
        if (err)
          reject(new Error(`services.sh ${verb} (private broker ${port}) failed: ${err.message}\n${stderr}`))
        else resolve()
      })
    })

  const pid = (): number | undefined => {
    try {
      const value = Number(readFileSync(pidFile, 'utf8').trim())
      return Number.isInteger(value) && value > 0 ? value : undefined
    } catch {
      return undefined
    }
  }

  const killNow = () => {
    const current = pid()
    if (current !== undefined && brokerAlive(current, runDir)) {
      try {
        process.kill(current, 'SIGKILL')
      } catch {}
    }
  }
  // Last resort if the worker exits without afterAll (a crash, a timeout): no broker left behind.
  const onExit = () => {
    killNow()
    if (!keep) rmSync(root, { recursive: true, force: true })
  }
  process.once('exit', onExit)

  async function waitGone(current: number): Promise<void> {
    const deadline = Date.now() + 30_000
    while (brokerAlive(current, runDir) || (await portOpen(port))) {
      if (Date.now() > deadline) throw new Error(`private broker ${current} still alive 30 s after SIGKILL`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async function start(): Promise<void> {
    await run('up')
    const current = pid()
    if (current === undefined || !brokerAlive(current, runDir) || !(await portOpen(port))) {
      throw new Error(`private broker not running on ${port} after services.sh up`)
    }
  }

  async function kill(): Promise<void> {
    const current = pid()
    if (current === undefined || !brokerAlive(current, runDir)) {
      throw new Error('private broker is not running')
    }
    process.kill(current, 'SIGKILL')
    await waitGone(current)
  }

  let destroyed: Promise<void> | undefined
  const broker: PrivateKafka = {
    brokers: `127.0.0.1:${port}`,
    port,
    runDir,
    logDir,
    pid,
    start,
    stop: () => run('down'),
    kill,
    async restart({ hard = true, downMs = 0 } = {}) {
      if (hard) await kill()
      else await run('down')
      const downAt = Date.now()
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs))
      await start()
      return { downAt, upAt: Date.now() }
    },
    destroy: () =>
      (destroyed ??= teardown({
        down: () => run('down'),
        kill: killNow,
        onExit,
        keep,
        root,
        what: 'broker',
      })),
  }

  try {
    await start()
  } catch (err) {
    await broker.destroy()
    throw err
  }
  return broker
}

export interface PrivateKafkaNode {
  /** KRaft node id (1..n), also the broker id kafkajs reports in metadata. */
  readonly id: number
  /** The broker's port; for a controller-only node, its controller port. */
  readonly port: number
}

export interface PrivateKafkaCluster {
  /** Every broker's `127.0.0.1:<port>`, comma-separated (KAFKA_BROKERS). */
  readonly brokers: string
  /** The brokers (also the controllers unless `controllers` lists nodes of their own). */
  readonly nodes: readonly PrivateKafkaNode[]
  /** Controller-only nodes (ids after the brokers'); empty when the brokers form the quorum. */
  readonly controllers: readonly PrivateKafkaNode[]
  readonly runDir: string
  readonly logDir: string
  /** Node `id`'s pid while it runs. */
  pid(id: number): number | undefined
  alive(id: number): boolean
  /** SIGKILL node `id`; resolves once the process is gone and its port is closed. */
  kill(id: number): Promise<void>
  /** `services.sh up`: starts the given nodes (default: every stopped one) and waits until each serves. */
  start(ids?: readonly number[]): Promise<void>
  /** The active KRaft controller (quorum leader), as recorded by the live nodes with the newest epoch. */
  activeController(): number | undefined
  /** Stops every node (SIGKILL if `down` fails) and deletes the folder. Idempotent. */
  destroy(): Promise<void>
}

/**
 * A private cluster of `size` brokers (services.sh with KAFKA_BROKER_COUNT), replication factor 3
 * and min.insync.replicas 2, on free ports. By default every broker is also a controller; with
 * `controllers` (KAFKA_CONTROLLER_COUNT), the quorum runs on that many controller-only nodes
 * instead, so it survives the loss of brokers. About 15 s to start; a killed node's restart takes
 * about as long.
 */
export async function startPrivateKafkaCluster(
  size = 3,
  { controllers: controllerCount = 0 }: { controllers?: number } = {},
): Promise<PrivateKafkaCluster> {
  const root = mkdtempSync(join(tmpdir(), 'intellisite-private-cluster-'))
  const runDir = join(root, 'run')
  const logDir = join(root, 'logs')
  const quorumSize = controllerCount > 0 ? controllerCount : size
  const ports = new Set<number>()
  while (ports.size < size + quorumSize) ports.add(await freePort())
  const all = [...ports]
  const nodes = Array.from({ length: size }, (_, i) => ({ id: i + 1, port: all[i]! }))
  const controllerPorts = all.slice(size)
  const controllers = Array.from({ length: controllerCount }, (_, i) => ({
    id: size + i + 1,
    port: controllerPorts[i]!,
  }))
  const everyNode = [...nodes, ...controllers]
  const keep = Boolean(process.env.TEST_PRIVATE_KAFKA_KEEP)

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MONGO_URL: process.env.MONGO_URL || 'mongodb://external.invalid/unused',
    DATABASE_URL: process.env.DATABASE_URL || 'postgres://external.invalid/unused',
    INTELLISITE_RUN_DIR: runDir,
    INTELLISITE_LOG_DIR: logDir,
    KAFKA_BROKER_COUNT: String(size),
    KAFKA_CONTROLLER_COUNT: String(controllerCount),
    INTELLISITE_KAFKA_PORTS: nodes.map((n) => n.port).join(','),
    INTELLISITE_KAFKA_CONTROLLER_PORTS: controllerPorts.join(','),
  }
  delete env.KAFKA_BROKERS

  const run = (verb: 'up' | 'down', only?: readonly number[]) =>
    new Promise<void>((resolve, reject) => {
      const runEnv = only ? { ...env, INTELLISITE_KAFKA_ONLY_NODES: only.join(',') } : env
      execFile(
        'bash',
        [SCRIPT, verb],
        { env: runEnv, timeout: SCRIPT_TIMEOUT_MS },
        (err, _stdout, stderr) => {
          if (err)
            reject(new Error(`services.sh ${verb} (private cluster) failed: ${err.message}\n${stderr}`))
          else resolve()
        },
      )
    })

  const pid = (id: number): number | undefined => {
    try {
      const value = Number(readFileSync(join(runDir, `kafka-${id}.pid`), 'utf8').trim())
      return Number.isInteger(value) && value > 0 ? value : undefined
    } catch {
      return undefined
    }
  }
  const alive = (id: number) => {
    const current = pid(id)
    return current !== undefined && brokerAlive(current, runDir)
  }
  const node = (id: number) => {
    const found = everyNode.find((n) => n.id === id)
    if (!found) throw new Error(`no node ${id} in the private cluster`)
    return found
  }

  const killAll = () => {
    for (const { id } of everyNode) {
      const current = pid(id)
      if (current !== undefined && brokerAlive(current, runDir)) {
        try {
          process.kill(current, 'SIGKILL')
        } catch {}
      }
    }
  }
  const onExit = () => {
    killAll()
    if (!keep) rmSync(root, { recursive: true, force: true })
  }
  process.once('exit', onExit)

  async function kill(id: number): Promise<void> {
    const current = pid(id)
    if (current === undefined || !brokerAlive(current, runDir)) throw new Error(`node ${id} is not running`)
    process.kill(current, 'SIGKILL')
    const deadline = Date.now() + 30_000
    while (brokerAlive(current, runDir) || (await portOpen(node(id).port))) {
      if (Date.now() > deadline) throw new Error(`node ${id} still alive 30 s after SIGKILL`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async function start(ids?: readonly number[]): Promise<void> {
    await run('up', ids)
    for (const id of ids ?? everyNode.map((n) => n.id)) {
      if (!alive(id) || !(await portOpen(node(id).port))) throw new Error(`node ${id} not running after up`)
    }
  }

  function activeController(): number | undefined {
    let best: { epoch: number; leader: number } | undefined
    for (const { id } of everyNode) {
      if (!alive(id)) continue
      try {
        const state = JSON.parse(
          readFileSync(join(runDir, `kafka-${id}`, 'data', '__cluster_metadata-0', 'quorum-state'), 'utf8'),
        ) as { leaderId?: number; leaderEpoch?: number }
        if (state.leaderId === undefined || state.leaderId < 0 || state.leaderEpoch === undefined) continue
        if (!best || state.leaderEpoch > best.epoch)
          best = { epoch: state.leaderEpoch, leader: state.leaderId }
      } catch {}
    }
    return best?.leader
  }

  let destroyed: Promise<void> | undefined
  const cluster: PrivateKafkaCluster = {
    brokers: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    nodes,
    controllers,
    runDir,
    logDir,
    pid,
    alive,
    kill,
    start,
    activeController,
    destroy: () =>
      (destroyed ??= teardown({
        down: () => run('down'),
        kill: killAll,
        onExit,
        keep,
        root,
        what: 'cluster',
      })),
  }
  try {
    await start()
  } catch (err) {
    await cluster.destroy()
    throw err
  }
  return cluster
}
