import { randomUUID } from 'node:crypto'
import type { Pool } from 'pg'

export interface Webhook {
  id: string
  url: string
  description: string
  rules: string[] | null
  enabled: boolean
  disabledReason: string | null
  disabledAt: Date | null
  consecutiveFailures: number
  failingSince: Date | null
  previousSecretExpiresAt: Date | null
  createdAt: Date
  updatedAt: Date
}

export type DeliveryState = 'pending' | 'delivered' | 'failed'

export interface Delivery {
  id: string
  alertId: string
  kind: 'alert' | 'ping'
  state: DeliveryState
  attempts: number
  lastStatus: number | null
  lastLatencyMs: number | null
  lastError: string | null
  lastAttemptAt: Date | null
  nextAttemptAt: Date | null
  createdAt: Date
  deliveredAt: Date | null
}

export interface Attempt {
  attemptedAt: Date
  status: number | null
  latencyMs: number
  error: string | null
}

const WEBHOOK_COLUMNS = `id, url, description, rules, enabled, disabled_reason, disabled_at, consecutive_failures,
  failing_since, CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_expires,
  created_at, updated_at`

interface WebhookRow {
  id: string
  url: string
  description: string
  rules: string[] | null
  enabled: boolean
  disabled_reason: string | null
  disabled_at: Date | null
  consecutive_failures: number
  failing_since: Date | null
  previous_expires: Date | null
  created_at: Date
  updated_at: Date
}

const toWebhook = (row: WebhookRow): Webhook => ({
  id: row.id,
  url: row.url,
  description: row.description,
  rules: row.rules,
  enabled: row.enabled,
  disabledReason: row.disabled_reason,
  disabledAt: row.disabled_at,
  consecutiveFailures: row.consecutive_failures,
  failingSince: row.failing_since,
  previousSecretExpiresAt: row.previous_expires,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

/** A delivery's columns, of the table aliased `d`. */
const DELIVERY_COLUMNS = `d.id, d.alert_id, d.kind, d.state, d.attempts, d.last_status, d.last_latency_ms,
  d.last_error, d.last_attempt_at, CASE WHEN d.state = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
  d.created_at, d.delivered_at`

interface DeliveryRow {
  id: string
  alert_id: string
  kind: 'alert' | 'ping'
  state: DeliveryState
  attempts: number
  last_status: number | null
  last_latency_ms: number | null
  last_error: string | null
  last_attempt_at: Date | null
  next_attempt_at: Date | null
  created_at: Date
  delivered_at: Date | null
}

const toDelivery = (row: DeliveryRow): Delivery => ({
  id: row.id,
  alertId: row.alert_id,
  kind: row.kind,
  state: row.state,
  attempts: row.attempts,
  lastStatus: row.last_status,
  lastLatencyMs: row.last_latency_ms,
  lastError: row.last_error,
  lastAttemptAt: row.last_attempt_at,
  nextAttemptAt: row.next_attempt_at,
  createdAt: row.created_at,
  deliveredAt: row.delivered_at,
})

/**
 * The API's side of the webhook tables. Every query names the owner: another user's endpoint is
 * indistinguishable from one that does not exist (null, hence 404).
 */
export function createWebhooksRepository(pool: Pool) {
  async function create(
    owner: string,
    input: { url: string; description: string; rules: string[] | null; secret: string },
    maxPerUser: number,
  ): Promise<Webhook | 'limit'> {
    // The count and the insert in one statement: two concurrent creations cannot both pass the cap
    // unnoticed by much (the cap is a guard against abuse, not an invariant).
    const { rows } = await pool.query<WebhookRow>(
      `INSERT INTO webhooks (owner, url, description, rules, secret)
       SELECT $1, $2, $3, $4, $5
       WHERE (SELECT count(*) FROM webhooks WHERE owner = $1) < $6
       RETURNING ${WEBHOOK_COLUMNS}`,
      [owner, input.url, input.description, input.rules, input.secret, maxPerUser],
    )
    return rows[0] ? toWebhook(rows[0]) : 'limit'
  }

  async function list(owner: string, page: { skip: number; limit: number }) {
    const [items, total] = await Promise.all([
      pool.query<WebhookRow>(
        `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = $1 ORDER BY created_at, id OFFSET $2 LIMIT $3`,
        [owner, page.skip, page.limit],
      ),
      pool.query<{ n: string }>('SELECT count(*) AS n FROM webhooks WHERE owner = $1', [owner]),
    ])
    return { items: items.rows.map(toWebhook), total: Number(total.rows[0]?.n ?? 0) }
  }

  async function get(owner: string, id: string): Promise<Webhook | null> {
    const { rows } = await pool.query<WebhookRow>(
      `SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = $1 AND id = $2`,
      [owner, id],
    )
    return rows[0] ? toWebhook(rows[0]) : null
  }

  async function update(
    owner: string,
    id: string,
    changes: { url?: string; description?: string; rules?: string[] | null; enabled?: boolean },
  ): Promise<Webhook | null> {
    const { rows } = await pool.query<WebhookRow>(
      `UPDATE webhooks SET
         url = COALESCE($3, url),
         description = COALESCE($4, description),
         rules = CASE WHEN $5 THEN $6::text[] ELSE rules END,
         enabled = COALESCE($7, enabled),
         -- Re-enabling forgets why it was disabled and its run of failures: it starts afresh.
         disabled_reason = CASE WHEN $7 IS TRUE THEN NULL WHEN $7 IS FALSE AND enabled THEN 'disabled by its owner' ELSE disabled_reason END,
         disabled_at = CASE WHEN $7 IS TRUE THEN NULL WHEN $7 IS FALSE AND enabled THEN now() ELSE disabled_at END,
         consecutive_failures = CASE WHEN $7 IS TRUE AND NOT enabled THEN 0 ELSE consecutive_failures END,
         failing_since = CASE WHEN $7 IS TRUE AND NOT enabled THEN NULL ELSE failing_since END,
         updated_at = now()
       WHERE owner = $1 AND id = $2
       RETURNING ${WEBHOOK_COLUMNS}`,
      [
        owner,
        id,
        changes.url ?? null,
        changes.description ?? null,
        changes.rules !== undefined,
        changes.rules ?? null,
        changes.enabled ?? null,
      ],
    )
    return rows[0] ? toWebhook(rows[0]) : null
  }

  async function remove(owner: string, id: string): Promise<boolean> {
    const result = await pool.query('DELETE FROM webhooks WHERE owner = $1 AND id = $2', [owner, id])
    return (result.rowCount ?? 0) > 0
  }

  /** The new secret signs from now on; the one it replaces keeps signing for `overlapMs`. */
  async function rotateSecret(owner: string, id: string, secret: string, overlapMs: number) {
    const { rows } = await pool.query<WebhookRow>(
      `UPDATE webhooks SET previous_secret = secret,
         previous_secret_expires_at = now() + make_interval(secs => $4::double precision / 1000),
         secret = $3, updated_at = now()
       WHERE owner = $1 AND id = $2
       RETURNING ${WEBHOOK_COLUMNS}`,
      [owner, id, secret, overlapMs],
    )
    return rows[0] ? toWebhook(rows[0]) : null
  }

  /** A ping event through the notifier's queue (same worker, same guard, same signature). */
  async function enqueuePing(owner: string, id: string): Promise<Delivery | null> {
    const alertId = `ping_${randomUUID()}`
    const { rows } = await pool.query<DeliveryRow>(
      `INSERT INTO webhook_deliveries AS d (endpoint_id, alert_id, kind, body)
       SELECT w.id, $3, 'ping', json_build_object(
         'type', 'ping',
         'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
         'data', json_build_object('webhookId', w.id))::text
       FROM webhooks w WHERE w.owner = $1 AND w.id = $2
       RETURNING ${DELIVERY_COLUMNS}`,
      [owner, id, alertId],
    )
    return rows[0] ? toDelivery(rows[0]) : null
  }

  async function listDeliveries(
    owner: string,
    id: string,
    page: { skip: number; limit: number; state?: DeliveryState },
  ): Promise<{ items: Delivery[]; total: number } | null> {
    if ((await get(owner, id)) === null) return null
    const state = page.state ?? null
    const [items, total] = await Promise.all([
      pool.query<DeliveryRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d
         WHERE endpoint_id = $1 AND ($2::text IS NULL OR state = $2)
         ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT $4`,
        [id, state, page.skip, page.limit],
      ),
      pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::text IS NULL OR state = $2)',
        [id, state],
      ),
    ])
    return { items: items.rows.map(toDelivery), total: Number(total.rows[0]?.n ?? 0) }
  }

  async function getDelivery(
    owner: string,
    id: string,
    deliveryId: string,
  ): Promise<(Delivery & { body: string; attemptLog: Attempt[] }) | null> {
    const { rows } = await pool.query<DeliveryRow & { body: string }>(
      `SELECT ${DELIVERY_COLUMNS}, d.body
       FROM webhook_deliveries d JOIN webhooks w ON w.id = d.endpoint_id
       WHERE w.owner = $1 AND w.id = $2 AND d.id = $3`,
      [owner, id, deliveryId],
    )
    const row = rows[0]
    if (!row) return null
    const attempts = await pool.query<{
      attempted_at: Date
      status: number | null
      latency_ms: number
      error: string | null
    }>(
      'SELECT attempted_at, status, latency_ms, error FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id',
      [deliveryId],
    )
    return {
      ...toDelivery(row),
      body: row.body,
      attemptLog: attempts.rows.map((a) => ({
        attemptedAt: a.attempted_at,
        status: a.status,
        latencyMs: a.latency_ms,
        error: a.error,
      })),
    }
  }

  /** Due now, whatever its state: one more attempt (a delivered one is sent again, same webhook-id). */
  async function retryDelivery(owner: string, id: string, deliveryId: string): Promise<Delivery | null> {
    const { rows } = await pool.query<DeliveryRow>(
      `UPDATE webhook_deliveries d SET state = 'pending', next_attempt_at = now(), delivered_at = NULL
       FROM webhooks w
       WHERE w.id = d.endpoint_id AND w.owner = $1 AND w.id = $2 AND d.id = $3
       RETURNING ${DELIVERY_COLUMNS}`,
      [owner, id, deliveryId],
    )
    return rows[0] ? toDelivery(rows[0]) : null
  }

  return {
    create,
    list,
    get,
    update,
    remove,
    rotateSecret,
    enqueuePing,
    listDeliveries,
    getDelivery,
    retryDelivery,
  }
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>
