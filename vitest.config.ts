import { defineConfig } from 'vitest/config'
import { QUIET_KAFKAJS_FLAG } from './test/support/node-flags.js'

/**
 * Files that share the machine well: unit tests, and integration tests that only read and write
 * the local services (the API through `inject`, the stores, an in-process indexer or notifier on
 * the shared broker, with no fault injected). They run two at a time (scripts/test-all.sh). Every
 * other file starts processes, kills or cuts brokers and stores, times a rebalance or waits on
 * timeouts, and runs alone: on two cores, two fault-injection files side by side starve each
 * other's brokers and indexers past their timeouts.
 */
const ALL = ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts']

const LIGHT = [
  'packages/{common,alert-rules,webhooks,producer,dashboard,detections-store}/test/**/*.test.ts',
  'packages/api/test/*.test.ts',
  'packages/api/test/alerts/{alert-reader,alerts-window,catch-up,resume-token,alerts-in-app,alerts-visibility}.test.ts',
  'packages/indexer/test/{batch-session,config,decode-detection,delivery-plan}.test.ts',
  'packages/indexer/test/{indexer,dead-letters,topic-recreation,stale-committed-offset,coordinator-loss}.test.ts',
  'packages/indexer/test/{rules,rules-loading}.test.ts',
  'packages/notifier/test/{retry-policy,ssrf,isolation,delivery}.test.ts',
  'test/deploy/{compose,dockerfiles}.test.ts',
  'test/{runtime,services-env}.test.ts',
  'bench/{sse-streams,support/alert-sequence}.test.ts',
]

export default defineConfig({
  resolve: { conditions: ['development'] },
  ssr: { resolve: { conditions: ['development'] } },
  test: {
    globalSetup: ['./test/global-setup.ts'],
    pool: 'forks',
    // One file at a time unless told otherwise (scripts/test-all.sh runs the light project on two).
    maxWorkers: 1,
    // The workers run kafkajs too: quiet its TimeoutNegativeWarning even when vitest is started
    // without run.sh's NODE_OPTIONS (see test/support/node-flags.ts).
    execArgv: [QUIET_KAFKAJS_FLAG],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'light', include: LIGHT } },
      { extends: true, test: { name: 'heavy', include: ALL, exclude: ['**/node_modules/**', ...LIGHT] } },
    ],
  },
})
