// The dashboard in a real browser, for the tests that drive it (test/browser, test/e2e/replicas):
// Debian's chromium (apt-get when missing; never a browser download) driven by playwright-core,
// and this checkout's page built for the API to serve (DASHBOARD_DIR).
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium } from 'playwright-core'

const root = fileURLToPath(new URL('../..', import.meta.url))

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** The path of Debian's chromium, installed first when missing. */
export function ensureChromium(): string {
  return execFileSync('bash', [join(root, 'scripts/browser/ensure-chromium.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
}

/** Builds packages/dashboard into a new temporary folder and returns it. */
export function buildDashboard(): string {
  const distDir = mkdtempSync(join(tmpdir(), 'dashboard-dist-'))
  execFileSync(
    process.execPath,
    [
      join(root, 'packages/dashboard/node_modules/vite/bin/vite.js'),
      'build',
      '--outDir',
      distDir,
      '--emptyOutDir',
    ],
    { cwd: join(root, 'packages/dashboard'), stdio: ['ignore', 'ignore', 'inherit'] },
  )
  return distDir
}

/** Chromium with a profile in `userDataDir`, at a laptop's viewport. */
export function launchChromium(
  userDataDir: string,
  executablePath = ensureChromium(),
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  })
}
