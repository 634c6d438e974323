import { generateSecret } from '@intellisite/webhooks'
import { HttpError } from '../http/problem.js'
import type { ZodRouteHandler } from '../http/route-handler.js'
import type { WebhookUrlCheck } from './webhook-url-check.js'
import type * as operations from './webhooks-operations.js'
import type { Delivery, Webhook, WebhooksRepository } from './webhooks-repository.js'

// One handler factory per route, named after its operationId: it takes what the route needs and
// returns the route's handler.

export interface WebhooksHandlerDeps {
  webhooks: WebhooksRepository
  /** Refuses a URL the notifier must not send to (WEBHOOK_URL_REFUSED). */
  checkUrl: WebhookUrlCheck
  maxPerUser: number
  /** How long a rotated-out secret keeps signing. */
  secretOverlapMs: number
}

const notFound = () =>
  new HttpError('WEBHOOK_NOT_FOUND', 'No webhook with that id (webhooks are visible to their owner only).')
const deliveryNotFound = () =>
  new HttpError('DELIVERY_NOT_FOUND', 'No delivery with that id for this webhook.')
const disabled = (reason: string | null) =>
  new HttpError(
    'WEBHOOK_DISABLED',
    `The webhook is disabled${reason ? ` (${reason})` : ''}: enable it (PATCH enabled=true) first.`,
  )

/** The caller's webhook; another user's answers 404 like one that does not exist. */
async function visibleWebhook(webhooks: WebhooksRepository, userId: string, id: string): Promise<Webhook> {
  const webhook = await webhooks.get(userId, id)
  if (webhook === null) throw notFound()
  return webhook
}

/** The caller's webhook, refused with 409 while it is disabled: nothing is sent for it then. */
async function enabledWebhook(webhooks: WebhooksRepository, userId: string, id: string): Promise<Webhook> {
  const webhook = await visibleWebhook(webhooks, userId, id)
  if (!webhook.enabled) throw disabled(webhook.disabledReason)
  return webhook
}

function scheduledDelivery(delivery: Delivery) {
  return { deliveryId: delivery.id, nextAttemptAt: delivery.nextAttemptAt }
}

export function createWebhookHandler({
  webhooks,
  checkUrl,
  maxPerUser,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.createWebhook> {
  return async (request, reply) => {
    const { url, description, rules } = request.body
    await checkUrl(url)
    const secret = generateSecret()
    const created = await webhooks.create(
      request.user.sub,
      { url, description: description ?? '', rules: rules ?? null, secret },
      maxPerUser,
    )
    if (created === 'limit')
      throw new HttpError('WEBHOOK_LIMIT_REACHED', `A user may have at most ${maxPerUser} webhooks.`)
    request.log.info({ webhookId: created.id }, 'webhook created')
    return reply.code(201).send({ ...created, secret })
  }
}

export function listWebhooksHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.listWebhooks> {
  return async (request) => {
    const { skip, limit } = request.query
    const page = await webhooks.list(request.user.sub, { skip, limit })
    return { ...page, skip, limit }
  }
}

export function getWebhookHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.getWebhook> {
  return async (request) => visibleWebhook(webhooks, request.user.sub, request.params.id)
}

export function updateWebhookHandler({
  webhooks,
  checkUrl,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.updateWebhook> {
  return async (request) => {
    if (request.body.url !== undefined) {
      // Not found wins over a refused URL: another user's id must not answer differently.
      await visibleWebhook(webhooks, request.user.sub, request.params.id)
      await checkUrl(request.body.url)
    }
    return (
      (await webhooks.update(request.user.sub, request.params.id, request.body)) ?? Promise.reject(notFound())
    )
  }
}

export function deleteWebhookHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.deleteWebhook> {
  return async (request, reply) => {
    if (!(await webhooks.remove(request.user.sub, request.params.id))) throw notFound()
    return reply.code(204).send(null)
  }
}

export function rotateWebhookSecretHandler({
  webhooks,
  secretOverlapMs,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.rotateWebhookSecret> {
  return async (request) => {
    const secret = generateSecret()
    const rotated = await webhooks.rotateSecret(request.user.sub, request.params.id, secret, secretOverlapMs)
    if (rotated === null) throw notFound()
    request.log.info({ webhookId: rotated.id }, 'webhook secret rotated')
    return { secret, previousSecretExpiresAt: rotated.previousSecretExpiresAt ?? new Date() }
  }
}

export function testWebhookHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.testWebhook> {
  return async (request, reply) => {
    await enabledWebhook(webhooks, request.user.sub, request.params.id)
    const delivery = await webhooks.enqueuePing(request.user.sub, request.params.id)
    if (delivery === null) throw notFound()
    return reply.code(202).send(scheduledDelivery(delivery))
  }
}

export function listWebhookDeliveriesHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.listWebhookDeliveries> {
  return async (request) => {
    const { skip, limit, state } = request.query
    const page = await webhooks.listDeliveries(request.user.sub, request.params.id, { skip, limit, state })
    if (page === null) throw notFound()
    return { ...page, skip, limit }
  }
}

export function getWebhookDeliveryHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.getWebhookDelivery> {
  return async (request) => {
    const { id, deliveryId } = request.params
    const delivery = await webhooks.getDelivery(request.user.sub, id, deliveryId)
    if (delivery !== null) return delivery
    throw (await webhooks.get(request.user.sub, id)) === null ? notFound() : deliveryNotFound()
  }
}

export function retryWebhookDeliveryHandler({
  webhooks,
}: WebhooksHandlerDeps): ZodRouteHandler<typeof operations.retryWebhookDelivery> {
  return async (request, reply) => {
    const { id, deliveryId } = request.params
    await enabledWebhook(webhooks, request.user.sub, id)
    const delivery = await webhooks.retryDelivery(request.user.sub, id, deliveryId)
    if (delivery === null) throw deliveryNotFound()
    return reply.code(202).send(scheduledDelivery(delivery))
  }
}
