// Starts the local services once per test run (idempotent: already-running or external services
// are reused) and exports their connection variables to every test worker.
import { startServices } from '../scripts/services/services-env.js'

export default function setup(): void {
  Object.assign(process.env, startServices({ log: 'inherit' }))
}
