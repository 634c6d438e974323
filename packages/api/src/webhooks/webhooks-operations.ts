import type { FastifySchema } from 'fastify'
import { z } from 'zod'
import { problemResponses, problemSchema } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import {
  createWebhookBodySchema,
  deliveriesPageSchema,
  deliveriesQuerySchema,
  deliveryDetailSchema,
  deliveryParamsSchema,
  pageQuerySchema,
  rotatedSecretSchema,
  scheduledDeliverySchema,
  updateWebhookBodySchema,
  webhookIdParamsSchema,
  webhookSchema,
  webhooksPageSchema,
  webhookWithSecretSchema,
} from './webhooks-schemas.js'

// The schema of each webhooks route: what it takes and answers, as the OpenAPI document shows it.

const tags = ['webhooks']
const security = SECURED
const urlRefused = problemSchema.describe(
  'Invalid body, or a URL refused: not https, credentials or a fragment in it, or a host that does not resolve ' +
    'or resolves to a loopback, private, link-local, metadata or otherwise non-public address (the detail says which)',
)
const webhookDisabled = problemSchema.describe('The webhook is disabled')

export const createWebhook = {
  tags,
  operationId: 'createWebhook',
  summary: 'Register a webhook endpoint',
  description:
    'Alerts the caller may see (optionally only those of some rules) are POSTed to `url` per the Standard ' +
    'Webhooks specification, signed with the returned `secret`, which is shown only in this response.',
  security,
  body: createWebhookBodySchema,
  response: {
    201: webhookWithSecretSchema,
    400: urlRefused,
    409: problemSchema.describe('The caller already has the most webhooks allowed'),
    ...problemResponses(401, 413, 415, 500),
  },
} satisfies FastifySchema

export const listWebhooks = {
  tags,
  operationId: 'listWebhooks',
  summary: "List the caller's webhooks",
  description: 'Oldest first. Secrets are never listed.',
  security,
  querystring: pageQuerySchema,
  response: { 200: webhooksPageSchema, ...problemResponses(400, 401, 500) },
} satisfies FastifySchema

export const getWebhook = {
  tags,
  operationId: 'getWebhook',
  summary: 'Get a webhook',
  description: 'With why it is disabled, if it is, and its current run of failures.',
  security,
  params: webhookIdParamsSchema,
  response: { 200: webhookSchema, ...problemResponses(400, 401, 404, 500) },
} satisfies FastifySchema

export const updateWebhook = {
  tags,
  operationId: 'updateWebhook',
  summary: 'Change a webhook, or enable or disable it',
  description:
    'A new `url` is checked like at registration. `enabled: true` resumes deliveries and clears the ' +
    'disabled reason; deliveries pending while it was disabled go out then.',
  security,
  params: webhookIdParamsSchema,
  body: updateWebhookBodySchema,
  response: { 200: webhookSchema, 400: urlRefused, ...problemResponses(401, 404, 413, 415, 500) },
} satisfies FastifySchema

export const deleteWebhook = {
  tags,
  operationId: 'deleteWebhook',
  summary: 'Delete a webhook and its delivery log',
  description: 'Pending deliveries are dropped with it.',
  security,
  params: webhookIdParamsSchema,
  response: { 204: z.null().describe('Deleted'), ...problemResponses(400, 401, 404, 500) },
} satisfies FastifySchema

export const rotateWebhookSecret = {
  tags,
  operationId: 'rotateWebhookSecret',
  summary: "Replace a webhook's secret",
  description:
    `The new secret signs from now on; the previous one keeps signing too (a second signature in ` +
    '`webhook-signature`) until `previousSecretExpiresAt`, so receivers can switch without a gap. ' +
    'Rotating again within the overlap drops the oldest secret at once.',
  security,
  params: webhookIdParamsSchema,
  response: { 200: rotatedSecretSchema, ...problemResponses(400, 401, 404, 500) },
} satisfies FastifySchema

export const testWebhook = {
  tags,
  operationId: 'testWebhook',
  summary: 'Send a ping event to a webhook',
  description:
    'Queues a delivery of `{"type":"ping","timestamp":…,"data":{"webhookId":…}}`, sent by the notifier like ' +
    'any alert (same signature, retries and address checks). Follow it in the delivery log.',
  security,
  params: webhookIdParamsSchema,
  response: {
    202: scheduledDeliverySchema,
    409: webhookDisabled,
    ...problemResponses(400, 401, 404, 500),
  },
} satisfies FastifySchema

export const listWebhookDeliveries = {
  tags,
  operationId: 'listWebhookDeliveries',
  summary: "Page through a webhook's deliveries, newest first",
  description: 'Each with its attempts, the last status, latency and error, and when it is tried next.',
  security,
  params: webhookIdParamsSchema,
  querystring: deliveriesQuerySchema,
  response: { 200: deliveriesPageSchema, ...problemResponses(400, 401, 404, 500) },
} satisfies FastifySchema

export const getWebhookDelivery = {
  tags,
  operationId: 'getWebhookDelivery',
  summary: 'Get a delivery with its body and every attempt',
  security,
  params: deliveryParamsSchema,
  response: { 200: deliveryDetailSchema, ...problemResponses(400, 401, 404, 500) },
} satisfies FastifySchema

export const retryWebhookDelivery = {
  tags,
  operationId: 'retryWebhookDelivery',
  summary: 'Try a delivery again now',
  description:
    'Makes the delivery due now, whatever its state: a failed one gets one more attempt, a delivered one is ' +
    'sent again (same `webhook-id`, so receivers can tell).',
  security,
  params: deliveryParamsSchema,
  response: {
    202: scheduledDeliverySchema,
    409: webhookDisabled,
    ...problemResponses(400, 401, 404, 500),
  },
} satisfies FastifySchema
