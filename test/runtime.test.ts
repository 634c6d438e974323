// The runtime the suite runs on is the one the images ship, and the one warning we silence on it
// (kafkajs's TimeoutNegativeWarning) is the only one: every other warning still reaches stderr.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { requireEnv } from './support/env.js'
import { TS_NODE_FLAGS } from './support/node-flags.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const pinned = read('.node-version').trim()
const FLAG = '--disable-warning=TimeoutNegativeWarning'

/** A kafkajs admin round trip on the real broker, then a warning of another kind. */
const script = `
import { createRequire } from 'node:module'
const { Kafka, logLevel } = createRequire(${JSON.stringify(`${root}package.json`)})('kafkajs')
const admin = new Kafka({ clientId: 'warnings', brokers: process.env.KAFKA_BROKERS.split(','), logLevel: logLevel.NOTHING }).admin()
await admin.connect()
await admin.listTopics()
await admin.disconnect()
process.emitWarning('this one must stay visible', 'CanaryWarning')
`

function runNode(flags: string[]): string {
  const { NODE_OPTIONS: _inherited, ...env } = process.env
  const result = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...env, KAFKA_BROKERS: requireEnv('KAFKA_BROKERS') },
    encoding: 'utf8',
    timeout: 30_000,
  })
  expect(result.status, result.stderr).toBe(0)
  return result.stderr
}

describe('runtime', () => {
  it(`is Node.js ${pinned.split('.')[0]}, the major of .node-version that the images run`, () => {
    expect(process.versions.node.split('.')[0]).toBe(pinned.split('.')[0])
    expect(JSON.parse(read('package.json')).engines.node).toMatch(
      new RegExp(`^\\^${pinned.split('.')[0]}\\.`),
    )
  })

  it('kafkajs prints TimeoutNegativeWarning on this runtime without the flag', () => {
    expect(runNode([])).toMatch(/TimeoutNegativeWarning/)
  })

  it('with the flag that warning is gone and other warnings still print', () => {
    const stderr = runNode([FLAG])
    expect(stderr).not.toMatch(/TimeoutNegativeWarning/)
    expect(stderr).toMatch(/CanaryWarning: this one must stay visible/)
  })

  it('every way a service starts passes that flag', () => {
    expect(read('scripts/run.sh')).toContain(FLAG)
    expect(read('scripts/pipeline.ts')).toContain(FLAG)
    for (const service of ['api', 'indexer', 'producer']) {
      expect(read(`docker/${service}.Dockerfile`)).toContain(`"node", "${FLAG}", "dist/main.js"`)
      const scripts = JSON.parse(read(`packages/${service}/package.json`)).scripts as Record<string, string>
      expect(scripts.start).toBe(`node ${FLAG} dist/main.js`)
      expect(scripts.dev).toContain(FLAG)
    }
    const root = JSON.parse(read('package.json')).scripts as Record<string, string>
    expect(root.pipeline).toContain(FLAG)
    expect(root.bench).toContain(FLAG)
  })

  it('every image has the dependency patches before pnpm installs', () => {
    const patched = /patchedDependencies:\n((?:\s+.+\n?)+)/.exec(read('pnpm-workspace.yaml'))?.[1] ?? ''
    const files = [...patched.matchAll(/: (\S+)/g)].map((match) => match[1]!)
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) expect(existsSync(join(root, file)), file).toBe(true)
    for (const service of ['api', 'indexer', 'notifier', 'producer']) {
      const dockerfile = read(`docker/${service}.Dockerfile`)
      const copied = dockerfile.indexOf('COPY patches patches')
      expect(copied, service).toBeGreaterThan(0)
      expect(copied, service).toBeLessThan(dockerfile.search(/pnpm (fetch|install)/))
    }
  })

  it('so do the processes the tests and benchmarks start, even with an environment of their own', () => {
    // runNode drops NODE_OPTIONS, as a child given a fresh environment has none.
    expect(runNode([...TS_NODE_FLAGS])).not.toMatch(/TimeoutNegativeWarning/)
    // The test workers themselves, without relying on run.sh's NODE_OPTIONS.
    expect(process.execArgv).toContain(FLAG)
  })
})
