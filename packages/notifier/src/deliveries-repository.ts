import { alertForReader, type VisibleAlert } from '@intellisite/alert-rules'
import type { Alert } from '@intellisite/detections-store'
import type { Pool } from 'pg'

/** Rows per INSERT: a batch of alerts times many endpoints is split into statements this size. */
const INSERT_CHUNK = 2_000

/**
 * What an endpoint receives for an alert: a Standard Webhooks event envelope around the alert as
 * the endpoint's owner may see it. The timestamp is the detection's, so the same alert always
 * gives the same bytes.
 */
export function alertEventBody(alert: VisibleAlert): string {
  return JSON.stringify({ type: 'alert', timestamp: alert.detectedAt, data: alert })
}

export interface ClaimedDelivery {
  id: string
  endpointId: string
  url: string
  body: string
  /** Attempts made before this one. */
  attempts: number
  /** The secrets to sign with: the current one, and the previous one during a rotation's overlap. */
  secrets: string[]
}

export interface AttemptRecord {
  deliveryId: string
  endpointId: string
  attemptedAt: Date
  status: number | null
  latencyMs: number
  error: string | null
}

export interface FailureRun {
  consecutiveFailures: number
  failingSince: Date
}

/**
 * The notifier's side of the webhook tables (the API's migrations create them): enqueue, take due
 * deliveries, record each attempt.
 */
export function createDeliveriesRepository(pool: Pool) {
  /**
   * One pending delivery per (enabled endpoint, alert its owner may see), in one transaction for
   * the whole batch, idempotently: a batch consumed again (a crash before its offset was
   * committed) inserts nothing new. Returns how many deliveries were new.
   */
  async function enqueue(alerts: readonly Alert[]): Promise<number> {
    if (alerts.length === 0) return 0
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      const { rows: endpoints } = await client.query<{ id: string; owner: string; rules: string[] | null }>(
        'SELECT id, owner, rules FROM webhooks WHERE enabled',
      )
      const readers = endpoints.map((endpoint) => ({
        id: endpoint.id,
        reader: { userId: endpoint.owner },
        rules: endpoint.rules === null ? undefined : new Set(endpoint.rules),
      }))
      let endpointIds: string[] = []
      let alertIds: string[] = []
      let bodies: string[] = []
      let inserted = 0
      const flush = async () => {
        if (endpointIds.length === 0) return
        const result = await client.query(
          `INSERT INTO webhook_deliveries (endpoint_id, alert_id, body)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
           ON CONFLICT (endpoint_id, alert_id) DO NOTHING`,
          [endpointIds, alertIds, bodies],
        )
        inserted += result.rowCount ?? 0
        endpointIds = []
        alertIds = []
        bodies = []
      }
      for (const alert of alerts) {
        for (const { id, reader, rules } of readers) {
          const visible = alertForReader(alert, reader, rules)
          if (visible === null) continue
          endpointIds.push(id)
          alertIds.push(alert.id)
          bodies.push(alertEventBody(visible))
          if (endpointIds.length >= INSERT_CHUNK) await flush()
        }
      }
      await flush()
      await client.query('COMMIT')
      return inserted
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
  }

  /**
   * Takes up to `limit` due deliveries of enabled endpoints, at most `perEndpoint` minus what this
   * process already has in flight (`busy`) per endpoint, oldest due first, and leases them: their
   * next attempt moves `leaseMs` ahead, so no other notifier takes them meanwhile, and if this one
   * dies they are due again when the lease ends. SKIP LOCKED lets notifiers claim side by side.
   */
  async function claim(options: {
    limit: number
    perEndpoint: number
    busy: ReadonlyMap<string, number>
    leaseMs: number
  }): Promise<ClaimedDelivery[]> {
    const { rows } = await pool.query<{
      id: string
      endpoint_id: string
      url: string
      body: string
      attempts: number
      secret: string
      previous_secret: string | null
    }>(
      `WITH slots AS (
         SELECT w.id, $3::int - COALESCE(b.n, 0) AS free
         FROM webhooks w
         LEFT JOIN unnest($1::uuid[], $2::int[]) AS b (id, n) ON b.id = w.id
         WHERE w.enabled
       ), picked AS (
         SELECT d.id, d.next_attempt_at
         FROM slots s
         CROSS JOIN LATERAL (
           SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
           WHERE d.endpoint_id = s.id AND d.state = 'pending' AND d.next_attempt_at <= now()
           ORDER BY d.next_attempt_at
           LIMIT GREATEST(s.free, 0)
           FOR UPDATE SKIP LOCKED
         ) d
         ORDER BY d.next_attempt_at
         LIMIT $4
       )
       UPDATE webhook_deliveries d
       SET next_attempt_at = now() + make_interval(secs => $5::double precision / 1000)
       FROM picked p, webhooks w
       WHERE d.id = p.id AND w.id = d.endpoint_id
       RETURNING d.id, d.endpoint_id, w.url, d.body, d.attempts, w.secret,
         CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret`,
      [
        [...options.busy.keys()],
        [...options.busy.values()],
        options.perEndpoint,
        options.limit,
        options.leaseMs,
      ],
    )
    return rows.map((row) => ({
      id: row.id,
      endpointId: row.endpoint_id,
      url: row.url,
      body: row.body,
      attempts: row.attempts,
      secrets: row.previous_secret === null ? [row.secret] : [row.secret, row.previous_secret],
    }))
  }

  /** Ends the lease of deliveries taken but not attempted (a stopping notifier): due again now. */
  async function release(ids: readonly string[]): Promise<void> {
    await pool.query(
      "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = ANY($1::uuid[]) AND state = 'pending'",
      [ids],
    )
  }

  /**
   * 2xx answers: the deliveries are done and their endpoints' runs of failures, if any, end. Many
   * at once in one statement: at hundreds of deliveries a second, one round trip each would be
   * the notifier's limit.
   */
  async function recordSuccesses(attempts: readonly AttemptRecord[]): Promise<void> {
    if (attempts.length === 0) return
    await pool.query(
      `WITH input AS (
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::int[], $5::int[])
           AS t (delivery_id, endpoint_id, attempted_at, status, latency_ms)
       ), d AS (
         UPDATE webhook_deliveries d
         SET state = 'delivered', attempts = d.attempts + 1, delivered_at = i.attempted_at,
             last_attempt_at = i.attempted_at, last_status = i.status, last_latency_ms = i.latency_ms,
             last_error = NULL
         FROM input i WHERE d.id = i.delivery_id
         RETURNING d.id
       ), a AS (
         INSERT INTO webhook_attempts (delivery_id, attempted_at, status, latency_ms)
         SELECT i.delivery_id, i.attempted_at, i.status, i.latency_ms FROM input i JOIN d ON d.id = i.delivery_id
       )
       UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL
       WHERE id IN (SELECT endpoint_id FROM input) AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)`,
      [
        attempts.map((a) => a.deliveryId),
        attempts.map((a) => a.endpointId),
        attempts.map((a) => a.attemptedAt),
        attempts.map((a) => a.status),
        attempts.map((a) => a.latencyMs),
      ],
    )
  }

  /**
   * A failed attempt: the delivery is due again at `nextAttemptAt`, or failed for good when that is
   * null; the endpoint's run of failures grows. Returns the run (null when the endpoint is gone or
   * already disabled) so the caller can decide whether to disable it.
   */
  async function recordFailure(
    attempt: AttemptRecord,
    nextAttemptAt: Date | null,
  ): Promise<FailureRun | null> {
    const { rows } = await pool.query<{
      consecutive_failures: number
      failing_since: Date
      enabled: boolean
    }>(
      `WITH d AS (
         UPDATE webhook_deliveries
         SET attempts = attempts + 1, last_attempt_at = $3, last_status = $4, last_latency_ms = $5,
             last_error = $6,
             state = CASE WHEN $7::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
             next_attempt_at = COALESCE($7::timestamptz, next_attempt_at)
         WHERE id = $1
         RETURNING id
       ), a AS (
         INSERT INTO webhook_attempts (delivery_id, attempted_at, status, latency_ms, error)
         SELECT id, $3, $4, $5, $6 FROM d
       )
       UPDATE webhooks
       SET consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, $3)
       WHERE id = $2
       RETURNING consecutive_failures, failing_since, enabled`,
      [
        attempt.deliveryId,
        attempt.endpointId,
        attempt.attemptedAt,
        attempt.status,
        attempt.latencyMs,
        attempt.error,
        nextAttemptAt,
      ],
    )
    const row = rows[0]
    if (!row?.enabled) return null
    return { consecutiveFailures: row.consecutive_failures, failingSince: row.failing_since }
  }

  /** Disables an endpoint with its reason (shown by the API); false when it already was. */
  async function disableEndpoint(endpointId: string, reason: string): Promise<boolean> {
    const result = await pool.query(
      `UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = now(), updated_at = now()
       WHERE id = $1 AND enabled`,
      [endpointId, reason],
    )
    return (result.rowCount ?? 0) > 0
  }

  async function counts(): Promise<{ pending: number; disabledEndpoints: number }> {
    const { rows } = await pool.query<{ pending: string; disabled: string }>(
      `SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending') AS pending,
              (SELECT count(*) FROM webhooks WHERE NOT enabled) AS disabled`,
    )
    return { pending: Number(rows[0]?.pending ?? 0), disabledEndpoints: Number(rows[0]?.disabled ?? 0) }
  }

  /** The webhook tables exist (the API has migrated the database). */
  async function ping(): Promise<void> {
    await pool.query('SELECT 1 FROM webhook_deliveries LIMIT 0')
  }

  return { enqueue, claim, release, recordSuccesses, recordFailure, disableEndpoint, counts, ping }
}

export type DeliveriesRepository = ReturnType<typeof createDeliveriesRepository>
