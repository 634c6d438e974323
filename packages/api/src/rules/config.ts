import { ALERT_RULES_TOPIC } from '@intellisite/alert-rules'
import { z } from 'zod'

/** Settings of the rules API and its changelog relay, parsed by main.ts (merged into the API config). */
export const rulesConfigSchema = z.object({
  /**
   * Categories of the built-in rule, as the indexer reads them (same default): GET /rules shows
   * the rule the indexers actually run.
   */
  SUSPICIOUS_VEHICLE: z
    .string()
    .default('SUV')
    .refine((value) => value.split(',').some((entry) => entry.trim().length > 0), 'lists no category'),
  /** The compacted changelog topic the indexers follow; created compacted at start if missing. */
  ALERT_RULES_TOPIC: z.string().min(1).default(ALERT_RULES_TOPIC),
  /**
   * How often the relay looks for rule changes left unpublished (another replica crashed between
   * its commit and its publish); changes made here are published as soon as they commit.
   */
  RULES_RELAY_INTERVAL_MS: z.coerce.number().int().min(100).default(5_000),
  /** Longest wait between attempts while publishing fails (Kafka unreachable). */
  RULES_RELAY_RETRY_MAX_MS: z.coerce.number().int().min(100).default(30_000),
})

export type RulesConfig = z.infer<typeof rulesConfigSchema>
