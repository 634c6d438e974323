import { booleanSchema, durationSchema } from '@intellisite/common'
import { z } from 'zod'

/** Settings of /webhooks, parsed from the environment by main.ts (merged into the API config). */
export const webhooksConfigSchema = z.object({
  /**
   * Accepts webhook URLs on loopback and private addresses, and plain http (local runs and tests;
   * the notifier has the same switch for deliveries). Never in production.
   */
  WEBHOOK_ALLOW_PRIVATE: booleanSchema,
  /** How long the previous secret keeps signing after a rotation, so receivers can switch without a gap. */
  WEBHOOK_ROTATION_OVERLAP: z.string().default('24h').pipe(durationSchema),
  /** Endpoints one user may have. */
  WEBHOOK_MAX_PER_USER: z.coerce.number().int().positive().default(25),
})
