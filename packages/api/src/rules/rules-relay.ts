import { type RuleRecordMessage, ruleRecord, ruleTombstone } from '@intellisite/alert-rules'
import { growingDelay } from '@intellisite/common'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { readRule } from './rules-repository.js'

export interface RulesRelayOptions {
  pool: Pool
  /** Publishes one record and resolves once the broker has it (acks from every in-sync replica). */
  send: (record: RuleRecordMessage) => Promise<void>
  logger: Logger
  /** Safety tick: rows another replica left behind (it crashed after its commit) are found this often. */
  intervalMs: number
  /** Longest wait between attempts while publishing fails. */
  retryMaxMs: number
  onPublished?: (record: RuleRecordMessage) => void
}

/** Outbox rows taken per transaction. */
const BATCH = 100
/** Advisory lock class of "publishing rule X"; any constant, the same in every replica. */
const PUBLISH_LOCK = 0x1e7e12

/**
 * Publishes rule changes from `rules_outbox` to the changelog topic. Each round takes a batch of
 * outbox rows (`FOR UPDATE SKIP LOCKED`: replicas share the work), reads each rule's current
 * state, publishes it (or a tombstone when it is gone), and deletes the rows in the same
 * transaction; a failed publish rolls back and the rows stay for the next round. Publishers of
 * the same rule take its advisory lock first, so whoever publishes later read a later state:
 * the topic never ends on an older version than PostgreSQL holds.
 */
export function createRulesRelay(options: RulesRelayOptions) {
  const { pool, send, logger } = options
  let running: Promise<void> | undefined
  let again = false
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  let closed = false

  async function publishBatch(): Promise<number> {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      const { rows } = await client.query<{ id: string; rule_id: string }>(
        'SELECT id, rule_id FROM rules_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
        [BATCH],
      )
      if (rows.length > 0) {
        const ruleIds = [...new Set(rows.map((row) => row.rule_id))]
        // One lock order for every publisher (by key, as two ids may share one), so none deadlock.
        const { rows: keys } = await client.query<{ key: number }>(
          'SELECT DISTINCT hashtext(id) AS key FROM unnest($1::text[]) AS id ORDER BY key',
          [ruleIds],
        )
        for (const { key } of keys)
          await client.query('SELECT pg_advisory_xact_lock($1, $2)', [PUBLISH_LOCK, key])
        for (const id of ruleIds) {
          const rule = await readRule(client, id)
          const record = rule ? ruleRecord(rule) : ruleTombstone(id)
          await send(record)
          options.onPublished?.(record)
          logger.debug({ ruleId: id, version: rule?.version, tombstone: rule === null }, 'rule published')
        }
        await client.query('DELETE FROM rules_outbox WHERE id = ANY($1::bigint[])', [
          rows.map((row) => row.id),
        ])
      }
      await client.query('COMMIT')
      return rows.length
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
  }

  function schedule(ms: number) {
    clearTimeout(timer)
    if (closed) return
    timer = setTimeout(notify, ms)
    timer.unref()
  }

  async function run(): Promise<void> {
    try {
      do {
        again = false
        let taken = BATCH
        while (taken === BATCH && !closed) taken = await publishBatch()
      } while (again && !closed)
      if (failures > 0) logger.info({ failures }, 'rule changes published again')
      failures = 0
      schedule(options.intervalMs)
    } catch (err) {
      // Changes that came meanwhile wait for the next attempt too, rather than hammer a broker that is down.
      again = false
      failures++
      const delayMs = growingDelay(failures, 500, options.retryMaxMs)
      logger.warn({ err, failures, delayMs }, 'rule changes not published yet; retrying')
      schedule(delayMs)
    }
  }

  /** Publishes what the outbox holds now; a call during a round makes it go round once more. */
  function notify(): void {
    if (closed) return
    if (running) {
      again = true
      return
    }
    running = run().finally(() => {
      running = undefined
      if (again && !closed) notify()
    })
  }

  return {
    notify,
    /** One round now (repairs a crash between a commit and its publish); later rounds by themselves. */
    async start(): Promise<void> {
      notify()
      await running
    },
    /** Stops scheduling rounds and waits for the one under way. */
    async close(): Promise<void> {
      closed = true
      clearTimeout(timer)
      await running
    },
  }
}

export type RulesRelay = ReturnType<typeof createRulesRelay>
