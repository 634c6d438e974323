import { parseArgs } from 'node:util'
import { kafkaBrokersSchema, logLevelSchema, presentVariables } from '@intellisite/common'
import { z } from 'zod'

/**
 * Producer configuration from the environment, overridden by command-line flags
 * (`--rate 100` wins over `PRODUCER_RATE`). The only place that reads `process.env` and `argv`.
 */

const booleanFromEnv = z.union([z.boolean(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'boolean') return value
  const normalized = value.trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(normalized)) return true
  if (['0', 'false', 'no', 'off', ''].includes(normalized)) return false
  ctx.addIssue({ code: 'custom', message: `expected true/false, got "${value}"` })
  return z.NEVER
})

export const configSchema = z.object({
  KAFKA_BROKERS: kafkaBrokersSchema,
  KAFKA_CLIENT_ID: z.string().min(1).default('intellisite-producer'),
  DETECTIONS_TOPIC: z.string().min(1).max(249).default('intellisite.detections'),
  TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(10_000).default(3),
  TOPIC_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(32).default(1),
  PRODUCER_CREATE_TOPIC: booleanFromEnv.default(true),
  PRODUCER_RATE: z.coerce.number().positive().max(1_000_000).default(3),
  PRODUCER_COUNT: z.coerce.number().int().min(1).optional(),
  PRODUCER_BURST: booleanFromEnv.default(false),
  PRODUCER_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(500),
  PRODUCER_SEED: z.string().min(1).optional(),
  PRODUCER_PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(5000),
  LOG_LEVEL: logLevelSchema,
})

export type Config = z.infer<typeof configSchema>

const flags = {
  brokers: { type: 'string', env: 'KAFKA_BROKERS', help: 'Kafka bootstrap servers, comma-separated' },
  topic: { type: 'string', env: 'DETECTIONS_TOPIC', help: 'topic to send detections to' },
  rate: { type: 'string', env: 'PRODUCER_RATE', help: 'detections per second (default 3)' },
  count: { type: 'string', env: 'PRODUCER_COUNT', help: 'stop after this many (default: run until stopped)' },
  burst: {
    type: 'boolean',
    env: 'PRODUCER_BURST',
    help: 'send as fast as possible in batches, ignoring --rate',
  },
  'batch-size': { type: 'string', env: 'PRODUCER_BATCH_SIZE', help: 'records per send in burst mode (500)' },
  seed: { type: 'string', env: 'PRODUCER_SEED', help: 'seed for a reproducible stream (default: random)' },
  partitions: { type: 'string', env: 'TOPIC_PARTITIONS', help: 'partitions when creating the topic (3)' },
  'replication-factor': { type: 'string', env: 'TOPIC_REPLICATION_FACTOR', help: 'replication factor (1)' },
  'no-create-topic': { type: 'boolean', env: 'PRODUCER_CREATE_TOPIC', help: 'do not create the topic' },
  'progress-interval': {
    type: 'string',
    env: 'PRODUCER_PROGRESS_INTERVAL_MS',
    help: 'ms between progress lines, 0 = off (5000)',
  },
  help: { type: 'boolean', env: undefined, help: 'show this help' },
} as const

export function usage(): string {
  const lines = Object.entries(flags).map(([name, flag]) => {
    const left = `  --${name}${flag.type === 'string' ? ' <value>' : ''}`
    return `${left.padEnd(34)}${flag.help}${flag.env ? ` [${flag.env}]` : ''}`
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

  const input: Record<string, unknown> = presentVariables(env)
  for (const [name, value] of Object.entries(values)) {
    const flag = flags[name as keyof typeof flags]
    if (!flag.env || value === undefined) continue
    input[flag.env] = name === 'no-create-topic' ? !value : value
  }
  const result = configSchema.safeParse(input)
  if (result.success) return { ok: true, config: result.data }
  return {
    ok: false,
    errors: result.error.issues.map((issue) => `${issue.path.join('.') || 'config'}: ${issue.message}`),
  }
}
