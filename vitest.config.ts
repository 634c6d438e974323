import { defineConfig } from 'vitest/config'
import { QUIET_KAFKAJS_FLAG } from './test/support/node-flags.js'

export default defineConfig({
  resolve: { conditions: ['development'] },
  ssr: { resolve: { conditions: ['development'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    pool: 'forks',
    // One file at a time: on two cores, two fault-injection files side by side starve each other's
    // brokers and indexers past their timeouts.
    maxWorkers: 1,
    // The workers run kafkajs too: quiet its TimeoutNegativeWarning even when vitest is started
    // without run.sh's NODE_OPTIONS (see test/support/node-flags.ts).
    execArgv: [QUIET_KAFKAJS_FLAG],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
})
