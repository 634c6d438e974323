// Starts the local services once per test run (idempotent: already-running or external services
// are reused) and exports their connection variables to every test worker.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('../scripts/services/services.sh', import.meta.url))

export default function setup(): void {
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const env = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  for (const line of env.split('\n')) {
    const match = /^export (\w+)=(.*)$/.exec(line)
    if (match?.[1] && match[2] !== undefined) process.env[match[1]] = match[2]
  }
}
