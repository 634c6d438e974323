import { fileURLToPath } from 'node:url'
import {
  baseEnvSchema,
  booleanSchema,
  chooseDetectionsStore,
  hostSchema,
  kafkaClientIdSchema,
  parseEnvironment,
  portSchema,
  SERVICE_PORTS,
} from '@intellisite/common'
import { z } from 'zod'
import { alertsConfigSchema } from './alerts/config.js'
import { rulesConfigSchema } from './rules/config.js'
import { passwordSchema, usernameSchema } from './users/users-schemas.js'
import { webhooksConfigSchema } from './webhooks/config.js'

// From src/ (development) and dist/ (built) alike: the dashboard package's build output beside this one.
const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/dist', import.meta.url))

const positiveInt = z.coerce.number().int().positive()

/** `*` allows any origin, `false`/empty disables CORS, otherwise a comma-separated list of origins. */
const corsOriginSchema = z
  .string()
  .default('')
  .transform((value): true | false | string[] => {
    const trimmed = value.trim()
    if (trimmed === '' || trimmed === 'false') return false
    if (trimmed === '*' || trimmed === 'true') return true
    return trimmed
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin.length > 0)
  })

const variablesSchema = baseEnvSchema
  .pick({
    LOG_LEVEL: true,
    DATABASE_URL: true,
    // Where detections are; the MONGO_URL fallback is warned about at start.
    DETECTIONS_STORE_URL: true,
    MONGO_URL: true,
    KAFKA_BROKERS: true,
  })
  .extend({
    KAFKA_CLIENT_ID: kafkaClientIdSchema('api'),
    HOST: hostSchema,
    PORT: portSchema.default(SERVICE_PORTS.api),
    /**
     * Connections the kernel queues before the API accepts them (capped by net.core.somaxconn). SSE
     * clients reconnect in herds (after a deploy or a replica's loss, thousands within a second);
     * past Node's default of 511 the kernel drops their SYNs and each waits for its retransmission,
     * 1 s and then 3 s later.
     */
    LISTEN_BACKLOG: z.coerce.number().int().min(1).max(65_535).default(4096),
    /** How long `migrate` waits for PostgreSQL to accept connections (it may still be starting). */
    MIGRATE_WAIT_MS: z.coerce.number().int().min(0).default(60_000),
    // GET /alerts settings (ALERTS_TOPIC, SSE_*, TOPIC_*), declared by the alerts feature.
    ...alertsConfigSchema.shape,
    // SUSPICIOUS_VEHICLE, ALERT_RULES_TOPIC and the changelog relay's RULES_RELAY_*.
    ...rulesConfigSchema.shape,
    /**
     * The first admin: created at start if missing, promoted if present (its password is then left
     * alone). Both or neither. `promote-admin <username>` promotes other existing users.
     */
    ADMIN_USERNAME: usernameSchema.optional(),
    ADMIN_PASSWORD: passwordSchema.optional(),
    // /webhooks settings (WEBHOOK_*), declared by the webhooks routes.
    ...webhooksConfigSchema.shape,
    // Required, always: the refinement below reports its absence beside every other issue (a
    // missing required field would stop the refinement, and the ADMIN_* check with it).
    JWT_SECRET: z.string().optional(),
    JWT_EXPIRES_IN: positiveInt.default(3600).describe('access token lifetime in seconds'),
    BCRYPT_COST: z.coerce.number().int().min(4).max(31).default(12),
    CORS_ORIGIN: corsOriginSchema,
    TRUST_PROXY: booleanSchema,
    AUTH_RATE_LIMIT_MAX: positiveInt.default(10),
    AUTH_RATE_LIMIT_WINDOW_MS: positiveInt.default(60_000),
    DASHBOARD_DIR: z
      .string()
      .min(1)
      .default(DEFAULT_DASHBOARD_DIR)
      .describe('the built dashboard (index.html, assets/) served at /dashboard/'),
  })

export const configSchema = variablesSchema
  .superRefine((config, ctx) => {
    if ((config.ADMIN_USERNAME === undefined) !== (config.ADMIN_PASSWORD === undefined)) {
      const missing = config.ADMIN_USERNAME === undefined ? 'ADMIN_USERNAME' : 'ADMIN_PASSWORD'
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: 'ADMIN_USERNAME and ADMIN_PASSWORD go together: set both or neither',
      })
    }
    if (config.JWT_SECRET === undefined) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'is required (at least 32 bytes)' })
    } else if (Buffer.byteLength(config.JWT_SECRET, 'utf8') < 32) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_SECRET'],
        message: 'must be at least 32 bytes (HS256 keys shorter than the hash are brute-forceable)',
      })
    }
  })
  // JWT_SECRET is set here: a transform runs only on input that passed the refinement.
  .transform(({ JWT_SECRET = '', DETECTIONS_STORE_URL, MONGO_URL, ...rest }) => {
    const store = chooseDetectionsStore({ DETECTIONS_STORE_URL, MONGO_URL })
    return {
      ...rest,
      JWT_SECRET,
      DETECTIONS_STORE_URL: store.url,
      /** Which variable chose DETECTIONS_STORE_URL (main.ts warns when it was MONGO_URL). */
      detectionsStoreSource: store.source,
    }
  })

export type Config = z.output<typeof configSchema>

export { ConfigError } from '@intellisite/common'

/**
 * Parses the environment once. Throws `ConfigError` listing every problem, not just the first.
 * `overrides` are variables that win over `env` (tests, tools), checked like the environment's.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  overrides: Record<string, string | undefined> = {},
): Config {
  return parseEnvironment(configSchema, { ...env, ...overrides })
}

/** The `migrate` and `promote-admin` commands need only the users database, not the API's secrets. */
export function loadMigrateConfig(
  env: Record<string, string | undefined>,
): Pick<Config, 'DATABASE_URL' | 'LOG_LEVEL' | 'MIGRATE_WAIT_MS'> {
  return parseEnvironment(
    variablesSchema.pick({ DATABASE_URL: true, LOG_LEVEL: true, MIGRATE_WAIT_MS: true }),
    env,
  )
}
