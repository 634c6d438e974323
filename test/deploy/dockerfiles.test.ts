// The Dockerfiles, checked without a Docker engine: the project's image rules and hadolint.
// docker-build.test.ts runs their build stages.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  deployTools,
  read,
  readDockerfile,
  resolveImage,
  root,
  SERVICES,
  type ServiceName,
} from './deploy-files.js'

const pinnedPnpm = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager.split(
  '@',
)[1]
const pinnedNodeMajor = Number(read('.node-version').trim().split('.')[0])
const healthPort: Record<ServiceName, string | null> = {
  indexer: 'INDEXER_PORT',
  api: 'PORT',
  producer: null,
  notifier: 'NOTIFIER_PORT',
}

describe.each(SERVICES)('docker/%s.Dockerfile', (service) => {
  const path = `docker/${service}.Dockerfile`
  const dockerfile = readDockerfile(path)
  const runtime = dockerfile.stages.at(-1)!
  const build = dockerfile.stages[0]!
  const instructions = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword)

  it('is multi-stage on a Node LTS slim image of the major npm start and npm test run, never latest', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2)
    expect(pinnedNodeMajor % 2, 'even major = LTS line').toBe(0)
    for (const stage of dockerfile.stages) {
      const image = resolveImage(dockerfile, stage.from)
      expect(image).toMatch(/^node:(\d+)[\w.-]*-slim$/)
      expect(Number(/^node:(\d+)/.exec(image)?.[1]), '.node-version major').toBe(pinnedNodeMajor)
      expect(image).not.toMatch(/latest/)
    }
  })

  it('installs the pnpm version pinned in package.json', () => {
    const arg = build.instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('PNPM_VERSION='))
    expect(arg?.args).toBe(`PNPM_VERSION=${pinnedPnpm}`)
    expect(
      build.instructions.some((i) => i.keyword === 'RUN' && /"pnpm@\$\{PNPM_VERSION\}"/.test(i.args)),
    ).toBe(true)
  })

  it('ships production dependencies only: pnpm deploy --prod, runtime copies from the build stage', () => {
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)
    expect(runs.some((run) => / deploy .*--prod/.test(run))).toBe(true)
    for (const copy of instructions('COPY'))
      expect(copy.args).toMatch(new RegExp(`^--from=${build.name} /out/`))
  })

  it('runs as a non-root user with node dist/main.js, kafkajs timer warnings off', () => {
    const user = instructions('USER').at(-1)?.args
    expect(user).toBeDefined()
    expect(user).not.toMatch(/^(root|0)(:|$)/)
    const start = [...instructions('CMD'), ...instructions('ENTRYPOINT')].map((i) => i.args).join(' ')
    expect(start).toContain('"node", "--disable-warning=TimeoutNegativeWarning", "dist/main.js"')
  })

  it('declares a HEALTHCHECK (node fetch of /healthz on the service port; none for the producer)', () => {
    const healthcheck = instructions('HEALTHCHECK')
    expect(healthcheck).toHaveLength(1)
    const port = healthPort[service]
    if (port === null) expect(healthcheck[0]!.args).toBe('NONE')
    else {
      expect(healthcheck[0]!.args).toMatch(/CMD \["node", "-e", "fetch\(/)
      expect(healthcheck[0]!.args).toContain(`process.env.${port}`)
      expect(healthcheck[0]!.args).toContain('/healthz')
    }
  })

  it('copies only paths that exist and that .dockerignore lets through', () => {
    for (const copy of build.instructions.filter((i) => i.keyword === 'COPY')) {
      const sources = copy.args
        .split(/\s+/)
        .filter((part) => !part.startsWith('--'))
        .slice(0, -1)
      for (const source of sources) {
        expect(existsSync(join(root, source)), source).toBe(true)
        expect(source).not.toMatch(/node_modules|dist|\.env/)
      }
    }
  })
})

describe('docker/api.Dockerfile: the dashboard', () => {
  const dockerfile = readDockerfile('docker/api.Dockerfile')
  const build = dockerfile.stages[0]!
  const runtime = dockerfile.stages.at(-1)!

  it('builds the dashboard and points DASHBOARD_DIR at the copy the runtime stage holds', () => {
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)
    expect(runs.some((run) => /pnpm .*--filter @intellisite\/dashboard build/.test(run))).toBe(true)
    const copy = runtime.instructions.find((i) => i.keyword === 'COPY' && i.args.includes('/out/dashboard'))
    expect(copy?.args).toBe(`--from=${build.name} /out/dashboard ./dashboard`)
    const env = runtime.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args)
    expect(env).toContain('DASHBOARD_DIR=/app/dashboard')
    expect(runtime.instructions.find((i) => i.keyword === 'WORKDIR')?.args).toBe('/app')
  })
})

describe('.dockerignore', () => {
  it('keeps dependencies, build output, git and secrets out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
    for (const entry of ['**/node_modules', '**/dist', '.git', '.env']) expect(ignored).toContain(entry)
  })
})

describe('hadolint', () => {
  let hadolint: string
  beforeAll(() => {
    const tools = deployTools()
    if (!tools.hadolint) throw new Error('hadolint could not be installed: see test/deploy/tools.sh')
    hadolint = tools.hadolint
  }, 600_000)

  it.each(SERVICES)('finds nothing at all (style level and up) in docker/%s.Dockerfile', (service) => {
    const result = spawnSync(
      hadolint,
      ['--no-color', '--failure-threshold', 'style', join(root, `docker/${service}.Dockerfile`)],
      { encoding: 'utf8' },
    )
    expect(result.status, result.stdout + result.stderr).toBe(0)
  })
})
