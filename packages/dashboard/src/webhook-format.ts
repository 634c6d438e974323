// Webhooks as the API gives them, and the words the page shows for them. Pure, under unit test.

export interface Webhook {
  id: string
  url: string
  description: string
  rules: string[] | null
  enabled: boolean
  disabledReason: string | null
  disabledAt: string | null
  consecutiveFailures: number
  failingSince: string | null
  previousSecretExpiresAt: string | null
}

export interface Delivery {
  id: string
  alertId: string
  kind: 'alert' | 'ping'
  state: 'pending' | 'delivered' | 'failed'
  attempts: number
  lastStatus: number | null
  lastLatencyMs: number | null
  lastError: string | null
  lastAttemptAt: string | null
  nextAttemptAt: string | null
  createdAt: string
  deliveredAt: string | null
}

export interface CreateWebhookBody {
  url: string
  description?: string
}

export function webhookBodyFromForm(fields: {
  url: string
  description: string
}): { ok: true; body: CreateWebhookBody } | { ok: false; problems: string[] } {
  const url = fields.url.trim()
  if (url === '') return { ok: false, problems: ['Give the URL alerts are sent to.'] }
  const description = fields.description.trim()
  return { ok: true, body: description === '' ? { url } : { url, description } }
}

/** The endpoint's state in a few words: why it is off, or how it is failing. */
export function webhookState(webhook: Webhook): { label: string; tone: 'ok' | 'warn' | 'off' } {
  if (!webhook.enabled)
    return { label: `Disabled${webhook.disabledReason ? `: ${webhook.disabledReason}` : ''}`, tone: 'off' }
  if (webhook.consecutiveFailures > 0) {
    const times =
      webhook.consecutiveFailures === 1
        ? '1 failed attempt'
        : `${webhook.consecutiveFailures} failed attempts`
    return { label: `Enabled, ${times} in a row`, tone: 'warn' }
  }
  return { label: 'Enabled', tone: 'ok' }
}

/** The last attempt's answer: `200 in 12 ms`, `no response: <error>`, or `not tried yet`. */
export function lastAnswer(delivery: Delivery): string {
  if (delivery.attempts === 0) return 'not tried yet'
  const latency = delivery.lastLatencyMs === null ? '' : ` in ${delivery.lastLatencyMs} ms`
  const status = delivery.lastStatus === null ? 'no response' : `HTTP ${delivery.lastStatus}${latency}`
  return delivery.lastError ? `${status}: ${delivery.lastError}` : status
}
