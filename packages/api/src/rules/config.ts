import { baseEnvSchema } from '@intellisite/common'
import { z } from 'zod'

/** Settings of the rules API and its changelog relay, parsed by main.ts (merged into the API config). */
export const rulesConfigSchema = baseEnvSchema
  // The built-in rule's categories as the indexers read them, so GET /rules shows the rule they
  // run; and the changelog topic they follow, created compacted at start if missing.
  .pick({ SUSPICIOUS_VEHICLE: true, ALERT_RULES_TOPIC: true })
  .extend({
    /**
     * How often the relay looks for rule changes left unpublished (another replica crashed between
     * its commit and its publish); changes made here are published as soon as they commit.
     */
    RULES_RELAY_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
    /** Longest wait between attempts while publishing fails (Kafka unreachable). */
    RULES_RELAY_RETRY_MAX_MS: z.coerce.number().int().min(100).default(30_000),
  })

export type RulesConfig = z.infer<typeof rulesConfigSchema>
