// The local services' connection variables, as `services.sh env` prints them. One reader for
// everything that starts the services from TypeScript: `npm start`, the test setup, the benchmarks.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const SERVICES_SCRIPT = fileURLToPath(new URL('./services.sh', import.meta.url))

/** `export NAME=value` lines to a record (the values have no quotes: the script prints none). */
export function parseExports(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]))
}

/** Starts the services (idempotent; external ones are left alone) and returns their variables. */
export function startServices({
  log = 'stderr',
}: {
  log?: 'stderr' | 'inherit'
} = {}): Record<string, string> {
  execFileSync('bash', [SERVICES_SCRIPT, 'up'], {
    stdio: ['ignore', log === 'stderr' ? 2 : 'inherit', 'inherit'],
  })
  return parseExports(execFileSync('bash', [SERVICES_SCRIPT, 'env'], { encoding: 'utf8' }))
}
