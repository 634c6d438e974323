// A dry run of each Dockerfile's build stage without Docker: a scratch directory receives exactly
// what the stage COPYs, then the stage's own RUN commands run there (pnpm fetch/install/build/deploy),
// and the runtime stage's inputs are checked. A broken `pnpm deploy`, a file the image forgets, or a
// dev dependency leaking into production fails here rather than at `docker build`.
import { type SpawnOptions, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { readDockerfile, root, SERVICES } from './deploy-files.js'

function run(
  command: string,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number },
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout?.on('data', (chunk) => {
      output += chunk
    })
    child.stderr?.on('data', (chunk) => {
      output += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, output })
    })
  })
}

let store: string
beforeAll(async () => {
  store = (await run('pnpm', ['store', 'path'], { cwd: root })).output.trim()
})

// Sequential: the builds are CPU-bound (tsc), and in parallel they only contend for the cores.
describe('build stage dry run', () => {
  it.each(SERVICES)(
    '%s: the COPYed files build and deploy into a production tree that starts',
    async (service) => {
      const dockerfile = readDockerfile(`docker/${service}.Dockerfile`)
      const build = dockerfile.stages[0]!
      const work = mkdtempSync(join(tmpdir(), `dockerbuild-${service}-`))
      const out = join(work, 'out')
      const repo = join(work, 'repo')
      try {
        for (const instruction of build.instructions) {
          if (instruction.keyword === 'COPY') {
            const parts = instruction.args.split(/\s+/).filter((p) => !p.startsWith('--'))
            const target = join(repo, parts.at(-1)!)
            for (const source of parts.slice(0, -1)) {
              cpSync(join(root, source), parts.length > 2 ? join(target, source) : target, {
                recursive: true,
                filter: (src) => !/\/(node_modules|dist)(\/|$)/.test(src.slice(root.length)),
              })
            }
          } else if (instruction.keyword === 'RUN') {
            // The image installs pnpm with npm; here the same pinned pnpm is already on PATH.
            if (/npm install --global/.test(instruction.args)) continue
            const command = instruction.args
              .replace(/--mount=\S+/g, '')
              .replaceAll('/pnpm/store', store)
              .replace(/ \/out(?=\/|$)/g, ` ${out}`)
            const result = await run('bash', ['-c', command], {
              cwd: repo,
              env: { ...process.env, CI: 'true' },
            })
            expect(result.status, `${command}\n${result.output}`).toBe(0)
          }
        }
        // What the runtime stage copies exists…
        for (const copy of dockerfile.stages.at(-1)!.instructions.filter((i) => i.keyword === 'COPY')) {
          const source = copy.args.split(/\s+/)[1]!.replace(/^\/out/, out)
          expect(existsSync(source), source).toBe(true)
        }
        // …holds no development tooling…
        const installed = readdirSync(join(out, 'node_modules/.pnpm'))
        for (const dev of ['typescript@', 'vitest@', 'tsx@', '@biomejs', 'vite@', 'playwright-core@']) {
          expect(
            installed.filter((name) => name.startsWith(dev)),
            dev,
          ).toEqual([])
        }
        // …with the dashboard's built page (hashed assets, no source) for the API…
        if (service === 'api') {
          const dashboard = join(out, 'dashboard')
          expect(existsSync(join(dashboard, 'index.html'))).toBe(true)
          const assets = readdirSync(join(dashboard, 'assets'))
          expect(
            assets.some((name) => /^index-[\w-]{8,}\.js$/.test(name)),
            assets.join(),
          ).toBe(true)
          expect(existsSync(join(dashboard, 'src'))).toBe(false)
        }
        // …and starts: ESM links every import before running, so reaching the configuration check
        // proves all dependencies resolve (detections-store through its `default` condition).
        const env =
          service === 'api'
            ? { PATH: process.env.PATH, JWT_SECRET: 'short' }
            : { PATH: process.env.PATH, KAFKA_BROKERS: 'not a broker' }
        const started = await run(
          process.execPath,
          ['dist/main.js', ...(service === 'producer' ? ['--help'] : [])],
          {
            cwd: out,
            env,
            timeoutMs: 20_000,
          },
        )
        expect(started.output).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/)
        if (service === 'producer') expect(started.status, started.output).toBe(0)
        else {
          expect(started.status, started.output).toBe(1)
          expect(started.output).toMatch(/invalid configuration/i)
        }
      } finally {
        rmSync(work, { recursive: true, force: true })
      }
    },
    180_000,
  )
})
