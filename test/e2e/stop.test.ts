// Stopping `npm start` the way a supervisor does: a signal to the npm process itself, not to a
// terminal's process group. Whatever stops it, no process of the stack may outlive it: npm's script
// chain (npm -> bash scripts/run.sh -> the pipeline), the indexer, the API and the producer.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../support/ports.js'
import { createStackScope } from '../support/stack-scope.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scope = createStackScope('stop')

/** Parent pid and command line of every live process (Linux /proc). */
function processTable(): Map<number, { ppid: number; args: string }> {
  const table = new Map<number, { ppid: number; args: string }>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name may hold spaces and parentheses: fields resume after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z') continue
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()
      table.set(Number(entry), { ppid: Number(fields[1]), args })
    } catch {
      // exited while we looked
    }
  }
  return table
}

function descendants(pid: number): Map<number, string> {
  const table = processTable()
  const found = new Map<number, string>()
  const queue = [pid]
  while (queue.length > 0) {
    const parent = queue.shift()
    for (const [child, info] of table) {
      if (info.ppid === parent && !found.has(child)) {
        found.set(child, info.args)
        queue.push(child)
      }
    }
  }
  return found
}

const alive = (pids: Iterable<number>) => {
  const table = processTable()
  return [...pids].filter((pid) => table.has(pid))
}

/** Local addresses (hex, as the kernel lists them) of the sockets listening on a TCP port. */
function listeners(port: number): string[] {
  const addresses: string[] = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [local, , state] = line.trim().split(/\s+/).slice(1)
      const [address, hexPort] = (local ?? '').split(':')
      if (state === '0A' && hexPort !== undefined && Number.parseInt(hexPort, 16) === port)
        addresses.push(address ?? '')
    }
  }
  return addresses
}

interface Run {
  npm: ChildProcess
  exited: Promise<unknown>
  output: () => string
  /** The pipeline, the indexer, the API and the producer, by role, once all four run. */
  stack: Record<'pipeline' | 'indexer' | 'api' | 'producer', number>
  all: Map<number, string>
}

const started: ChildProcess[] = []
let ports: number[] = []

async function startStack(producerEnv: Record<string, string>): Promise<Run> {
  const [apiPort, indexerPort, notifierPort] = ports
  const npm = spawn('npm', ['start', '--silent'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own group, only so that a failing test can still clean up everything it started.
    detached: true,
    env: {
      ...process.env,
      PORT: String(apiPort),
      INDEXER_PORT: String(indexerPort),
      NOTIFIER_PORT: String(notifierPort),
      ...scope.env,
      DETECTIONS_STORE_URL: scope.databaseUrl('MONGO_URL'),
      DATABASE_URL: scope.databaseUrl('DATABASE_URL'),
      BCRYPT_COST: '4',
      JWT_SECRET: randomUUID() + randomUUID(),
      NO_COLOR: '1',
      PRODUCER_RATE: '5',
      ...producerEnv,
    },
  })
  started.push(npm)
  let output = ''
  npm.stdout?.on('data', (chunk) => {
    output += chunk
  })
  npm.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const exited = once(npm, 'exit')
  const deadline = Date.now() + 150_000
  while (!(output.includes('[pipeline] ready.') && /\[producer\].*producing detections/.test(output))) {
    if (npm.exitCode !== null) throw new Error(`npm start exited (${npm.exitCode}):\n${output}`)
    if (Date.now() > deadline) throw new Error(`npm start not ready in 150 s:\n${output}`)
    await sleep(200)
  }
  const all = descendants(npm.pid ?? -1)
  const find = (pattern: RegExp) => {
    const pid = [...all].find(([, args]) => pattern.test(args))?.[0]
    if (pid === undefined) throw new Error(`no ${pattern} among ${JSON.stringify([...all])}`)
    return pid
  }
  return {
    npm,
    exited,
    output: () => output,
    all,
    stack: {
      pipeline: find(/scripts\/pipeline\.ts/),
      indexer: find(/packages\/indexer\/src\/main\.ts/),
      api: find(/packages\/api\/src\/main\.ts/),
      producer: find(/packages\/producer\/src\/main\.ts/),
    },
  }
}

async function expectAllGone(pids: Map<number, string>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs
  let left = alive(pids.keys())
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(200)
    left = alive(pids.keys())
  }
  expect(
    left.map((pid) => `${pid} ${pids.get(pid)}`),
    'processes of the stack still running',
  ).toEqual([])
}

beforeAll(async () => {
  await scope.createDatabase()
  ports = [await freePort(), await freePort(), await freePort()]
})

afterAll(async () => {
  for (const npm of started) {
    try {
      if (npm.pid) process.kill(-npm.pid, 'SIGKILL')
    } catch {
      // already gone, as it should be
    }
  }
  await scope.cleanup()
}, 90_000)

describe.skipIf(process.platform !== 'linux')('stopping npm start', () => {
  it('SIGTERM to the npm pid stops the stack, producer first, and leaves no process', async () => {
    const run = await startStack({ PRODUCER_COUNT: '100000' })
    // Loopback by default: the API and the indexer listen on 127.0.0.1 only.
    expect(listeners(ports[0] ?? -1)).toEqual(['0100007F'])
    expect(listeners(ports[1] ?? -1)).toEqual(['0100007F'])

    process.kill(run.npm.pid ?? -1, 'SIGTERM')
    await Promise.race([run.exited, sleep(60_000)])
    expect(run.npm.exitCode, run.output()).not.toBeNull()
    await expectAllGone(run.all, 5_000)

    const output = run.output()
    expect(output).toContain('stopping: producer first')
    const producerDone = output.search(/\[producer\].*done/)
    expect(producerDone, output).toBeGreaterThan(-1)
    expect(output.search(/\[indexer\].*shutting down/)).toBeGreaterThan(producerDone)
    expect(output.search(/\[api\].*shutting down/)).toBeGreaterThan(producerDone)
    expect(output).toMatch(/\[indexer\].*indexer stopped/)
  }, 240_000)

  it('SIGINT to the npm pid does the same; a producer stopped from outside is reported as such', async () => {
    const run = await startStack({})
    process.kill(run.stack.producer, 'SIGTERM')
    const deadline = Date.now() + 20_000
    while (!run.output().includes('the producer stopped') && Date.now() < deadline) await sleep(200)
    expect(run.output()).toContain('the producer stopped (signalled from outside)')
    expect(run.output()).not.toContain('PRODUCER_COUNT')

    process.kill(run.npm.pid ?? -1, 'SIGINT')
    await Promise.race([run.exited, sleep(60_000)])
    expect(run.npm.exitCode, run.output()).not.toBeNull()
    await expectAllGone(run.all, 5_000)
    expect(run.output()).toMatch(/\[indexer\].*indexer stopped/)
    expect(run.output()).not.toMatch(/killing/)
  }, 240_000)

  it('when the pipeline itself is killed, the indexer, the API and the producer stop by themselves', async () => {
    const run = await startStack({ PRODUCER_COUNT: '100000' })
    process.kill(run.stack.pipeline, 'SIGKILL')
    // Each stops itself gracefully, well inside the 40 s after which its watch would kill it: a
    // process stuck on its dead log pipe shows here as one still running.
    await expectAllGone(run.all, 30_000)
    // npm saw its script die and exits as well.
    await Promise.race([run.exited, sleep(10_000)])
    expect(run.npm.exitCode ?? run.npm.signalCode).not.toBeNull()
  }, 240_000)
})
