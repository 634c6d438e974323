import { parseArgs } from 'node:util'
import {
  baseEnvSchema,
  booleanVariable,
  describeIssues,
  kafkaClientIdSchema,
  presentVariables,
} from '@intellisite/common'
import { z } from 'zod'

/**
 * Producer configuration from the environment, overridden by command-line flags
 * (`--rate 100` wins over `PRODUCER_RATE`). The only place that reads `process.env` and `argv`.
 */

export const configSchema = baseEnvSchema
  .pick({
    KAFKA_BROKERS: true,
    DETECTIONS_TOPIC: true,
    TOPIC_PARTITIONS: true,
    TOPIC_REPLICATION_FACTOR: true,
    LOG_LEVEL: true,
  })
  .extend({
    KAFKA_CLIENT_ID: kafkaClientIdSchema('producer'),
    PRODUCER_CREATE_TOPIC: booleanVariable(true),
    PRODUCER_RATE: z.coerce.number().positive().max(1_000_000).default(3),
    PRODUCER_COUNT: z.coerce.number().int().min(1).optional(),
    PRODUCER_BURST: booleanVariable(false),
    PRODUCER_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(500),
    PRODUCER_SEED: z.string().min(1).optional(),
    PRODUCER_PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(5000),
  })

export type Config = z.infer<typeof configSchema>

// `unset`: what happens when neither the flag nor its variable is set and the variable has no default.
const flags = {
  brokers: { type: 'string', env: 'KAFKA_BROKERS', help: 'Kafka bootstrap servers, comma-separated' },
  topic: { type: 'string', env: 'DETECTIONS_TOPIC', help: 'topic to send detections to' },
  rate: { type: 'string', env: 'PRODUCER_RATE', help: 'detections per second' },
  count: { type: 'string', env: 'PRODUCER_COUNT', help: 'stop after this many', unset: 'run until stopped' },
  burst: {
    type: 'boolean',
    env: 'PRODUCER_BURST',
    help: 'send as fast as possible in batches, ignoring --rate',
  },
  'batch-size': { type: 'string', env: 'PRODUCER_BATCH_SIZE', help: 'records per send in burst mode' },
  seed: { type: 'string', env: 'PRODUCER_SEED', help: 'seed for a reproducible stream', unset: 'random' },
  partitions: { type: 'string', env: 'TOPIC_PARTITIONS', help: 'partitions when creating the topic' },
  'replication-factor': { type: 'string', env: 'TOPIC_REPLICATION_FACTOR', help: 'replication factor' },
  'no-create-topic': { type: 'boolean', env: 'PRODUCER_CREATE_TOPIC', help: 'do not create the topic' },
  'progress-interval': {
    type: 'string',
    env: 'PRODUCER_PROGRESS_INTERVAL_MS',
    help: 'ms between progress lines, 0 = off',
  },
  help: { type: 'boolean', env: undefined, help: 'show this help' },
} as const satisfies Record<
  string,
  { type: 'string' | 'boolean'; env: keyof Config | undefined; help: string; unset?: string }
>

/** A value flag's default as its help shows it: the schema's own, so the two cannot disagree. */
function shownDefault(flag: (typeof flags)[keyof typeof flags]): string | undefined {
  if (flag.type !== 'string' || flag.env === undefined) return undefined
  if ('unset' in flag) return flag.unset
  const value = configSchema.parse({})[flag.env]
  return Array.isArray(value) ? value.join(',') : String(value)
}

export function usage(): string {
  const lines = Object.entries(flags).map(([name, flag]) => {
    const left = `  --${name}${flag.type === 'string' ? ' <value>' : ''}`
    const fallback = shownDefault(flag)
    return `${left.padEnd(34)}${flag.help}${fallback === undefined ? '' : ` (default: ${fallback})`}${flag.env ? ` [${flag.env}]` : ''}`
  })
  return [
    'Usage: producer [options]   (every option can also be set by the environment variable shown)',
    ...lines,
  ].join('\n')
}

export type LoadResult =
  | { ok: true; config: Config }
  | { ok: false; help: true }
  | { ok: false; errors: string[] }

export function loadConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): LoadResult {
  const options = Object.fromEntries(Object.entries(flags).map(([name, flag]) => [name, { type: flag.type }]))
  let values: Record<string, string | boolean | undefined>
  try {
    // `pnpm dev -- --rate 5` hands us the `--` itself.
    const args = argv[0] === '--' ? argv.slice(1) : [...argv]
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values as typeof values
  } catch (err) {
    return { ok: false, errors: [(err as Error).message] }
  }
  if (values.help) return { ok: false, help: true }

  // Flags become the variables they stand for, so both go through the one schema.
  const input = presentVariables(env)
  for (const [name, value] of Object.entries(values)) {
    const flag = flags[name as keyof typeof flags]
    if (!flag.env || value === undefined) continue
    input[flag.env] = String(name === 'no-create-topic' ? !value : value)
  }
  const result = configSchema.safeParse(input)
  if (result.success) return { ok: true, config: result.data }
  return { ok: false, errors: describeIssues(result.error) }
}
