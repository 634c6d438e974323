import { MAX_WEBHOOK_URL_LENGTH } from '@intellisite/webhooks'
import { z } from 'zod'

export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 200
export const MAX_RULES = 100

const urlSchema = z
  .string()
  .trim()
  .min(1)
  .max(MAX_WEBHOOK_URL_LENGTH)
  .describe(
    'Where alerts are POSTed: https, a host that resolves to public addresses only (no loopback, private, ' +
      'link-local or metadata address), no credentials, no fragment',
  )
const descriptionSchema = z.string().trim().max(500).describe('Free text for the owner, up to 500 characters')
const rulesSchema = z
  .array(z.uuid())
  .min(1)
  .max(MAX_RULES)
  .nullable()
  .describe(
    'Only alerts that matched one of these rules (ids); null or absent: every alert the owner may see. ' +
      'Rules the owner cannot see never select an alert.',
  )

export const webhookIdParamsSchema = z.object({ id: z.uuid().describe('Webhook id') })
export const deliveryParamsSchema = z.object({
  id: z.uuid().describe('Webhook id'),
  deliveryId: z.uuid().describe('Delivery id'),
})

export const createWebhookBodySchema = z
  .strictObject({ url: urlSchema, description: descriptionSchema.optional(), rules: rulesSchema.optional() })
  .meta({ examples: [{ url: 'https://hooks.example.com/intellisite', description: 'ops channel' }] })

export const updateWebhookBodySchema = z
  .strictObject({
    url: urlSchema.optional(),
    description: descriptionSchema.optional(),
    rules: rulesSchema.optional(),
    enabled: z
      .boolean()
      .optional()
      .describe('false pauses deliveries (kept pending); true resumes them and clears the disabled reason'),
  })
  .refine((body) => Object.keys(body).length > 0, 'give at least one of url, description, rules, enabled')
  .meta({ minProperties: 1 })

export const pageQuerySchema = z.object({
  skip: z.coerce.number().int().min(0).max(1_000_000).default(0).describe('Items to skip'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIMIT)
    .default(DEFAULT_LIMIT)
    .describe(`Page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT})`),
})

export const deliveriesQuerySchema = pageQuerySchema.extend({
  state: z.enum(['pending', 'delivered', 'failed']).optional().describe('Only deliveries in this state'),
})

export const webhookSchema = z
  .object({
    id: z.uuid(),
    url: z.string(),
    description: z.string(),
    rules: z.array(z.string()).nullable(),
    enabled: z.boolean(),
    disabledReason: z
      .string()
      .nullable()
      .describe(
        'Why it is disabled: by its owner, a 410 Gone, or failing for too long (with the last error)',
      ),
    disabledAt: z.date().nullable(),
    consecutiveFailures: z.number().int().describe('Failed attempts in a row since the last success'),
    failingSince: z.date().nullable().describe('When the current run of failures began'),
    previousSecretExpiresAt: z
      .date()
      .nullable()
      .describe('During a rotation: until when the previous secret still signs (a second signature)'),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'Webhook' })

export const webhookWithSecretSchema = webhookSchema
  .extend({
    secret: z
      .string()
      .describe('whsec_ + base64 key (Standard Webhooks). Shown only here: store it to verify signatures'),
  })
  .meta({ id: 'WebhookWithSecret' })

export const webhooksPageSchema = z.object({
  items: z.array(webhookSchema),
  total: z.number().int(),
  skip: z.number().int(),
  limit: z.number().int(),
})

export const deliverySchema = z
  .object({
    id: z.uuid().describe('Also the webhook-id header of every attempt, as msg_<id>'),
    alertId: z.string().describe('The alert (detection) id, or ping_<uuid> for a test event'),
    kind: z.enum(['alert', 'ping']),
    state: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable().describe('HTTP status of the last attempt (null: no response)'),
    lastLatencyMs: z.number().int().nullable(),
    lastError: z.string().nullable(),
    lastAttemptAt: z.date().nullable(),
    nextAttemptAt: z.date().nullable().describe('When a pending delivery is tried next'),
    createdAt: z.date(),
    deliveredAt: z.date().nullable(),
  })
  .meta({ id: 'WebhookDelivery' })

export const deliveryDetailSchema = deliverySchema
  .extend({
    body: z.string().describe('The exact JSON text sent (and signed)'),
    attemptLog: z.array(
      z.object({
        attemptedAt: z.date(),
        status: z.number().int().nullable(),
        latencyMs: z.number().int(),
        error: z.string().nullable(),
      }),
    ),
  })
  .meta({ id: 'WebhookDeliveryDetail' })

export const deliveriesPageSchema = z.object({
  items: z.array(deliverySchema),
  total: z.number().int(),
  skip: z.number().int(),
  limit: z.number().int(),
})

export const rotatedSecretSchema = z.object({
  secret: z.string().describe('The new whsec_ secret, shown only here'),
  previousSecretExpiresAt: z
    .date()
    .describe('Until then attempts carry a signature by the previous secret too'),
})

export const scheduledDeliverySchema = z.object({
  deliveryId: z.uuid(),
  nextAttemptAt: z.date().nullable(),
})
