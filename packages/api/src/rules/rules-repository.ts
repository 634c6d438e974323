import type { Rule, RuleMatch, RuleScope, WatchEntry } from '@intellisite/alert-rules'
import { IntellisiteError } from '@intellisite/common'
import type { Pool, PoolClient } from 'pg'

/** A rule as stored, with its owner's name; entries are read apart (a watch list may be large). */
export interface StoredRule {
  id: string
  version: number
  name: string
  scope: RuleScope
  enabled: boolean
  watchlist: boolean
  match: RuleMatch
  entryCount: number
  owner: { id: string; username: string }
  createdAt: Date
  updatedAt: Date
}

export interface NewRule {
  name: string
  scope: RuleScope
  enabled: boolean
  watchlist: boolean
  match: RuleMatch
}

export interface RuleUpdate {
  name?: string
  scope?: RuleScope
  enabled?: boolean
  match?: RuleMatch
}

/** The owner already has a rule of that name (names are unique per owner, case-insensitively). */
export class RuleNameTakenError extends IntellisiteError<'RULE_NAME_TAKEN'> {
  constructor(cause: unknown) {
    super('RULE_NAME_TAKEN', 'a rule of that name exists for this owner', { cause })
  }
}

type Queryable = Pick<Pool | PoolClient, 'query'>

interface RuleRow {
  id: string
  version: number
  name: string
  scope: RuleScope
  enabled: boolean
  watchlist: boolean
  match: RuleMatch
  entry_count: number
  owner_id: string
  username: string
  created_at: Date
  updated_at: Date
}

const toRule = (row: RuleRow): StoredRule => ({
  id: row.id,
  version: row.version,
  name: row.name,
  scope: row.scope,
  enabled: row.enabled,
  watchlist: row.watchlist,
  match: row.match,
  entryCount: row.entry_count,
  owner: { id: row.owner_id, username: row.username },
  createdAt: row.created_at,
  updatedAt: row.updated_at,
})

/** Selects the columns of RuleRow from a row set `r` (a table or a CTE of `rules` rows). */
const WITH_OWNER = `SELECT r.id, r.version, r.name, r.scope, r.enabled, r.watchlist, r.match, r.entry_count,
  r.owner_id, u.username, r.created_at, r.updated_at FROM r JOIN users u ON u.id = r.owner_id`

const UNIQUE_VIOLATION = '23505'

async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/**
 * Rules in PostgreSQL. Every change bumps the version in one UPDATE that also checks it (`WHERE
 * version = $n`), so of two concurrent writers of the same version exactly one wins; the other gets
 * null and decides what to do. Each change also queues the rule in `rules_outbox` in the same
 * transaction (a trigger on `rules` does it, see migration 002).
 */
export function createRulesRepository(pool: Pool) {
  async function get(id: string): Promise<StoredRule | null> {
    const { rows } = await pool.query<RuleRow>(
      `WITH r AS (SELECT * FROM rules WHERE id = $1) ${WITH_OWNER}`,
      [id],
    )
    return rows[0] ? toRule(rows[0]) : null
  }

  /** Shared rules, then the viewer's private ones; each oldest first. */
  async function listVisible(
    viewerId: string,
    { skip, limit }: { skip: number; limit: number },
  ): Promise<{ items: StoredRule[]; total: number }> {
    const visible = `SELECT * FROM rules WHERE scope = 'shared' OR owner_id = $1`
    const [page, count] = await Promise.all([
      limit === 0
        ? Promise.resolve({ rows: [] as RuleRow[] })
        : pool.query<RuleRow>(
            `WITH r AS (${visible}) ${WITH_OWNER}
             ORDER BY (r.scope = 'shared') DESC, r.created_at, r.id OFFSET $2 LIMIT $3`,
            [viewerId, skip, limit],
          ),
      pool.query<{ total: number }>(`SELECT count(*)::int AS total FROM (${visible}) v`, [viewerId]),
    ])
    return { items: page.rows.map(toRule), total: count.rows[0]?.total ?? 0 }
  }

  async function create(ownerId: string, rule: NewRule): Promise<StoredRule> {
    try {
      const { rows } = await pool.query<RuleRow>(
        `WITH r AS (
           INSERT INTO rules (owner_id, name, scope, enabled, watchlist, match)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *
         ) ${WITH_OWNER}`,
        [ownerId, rule.name, rule.scope, rule.enabled, rule.watchlist, JSON.stringify(rule.match)],
      )
      return toRule(rows[0]!)
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new RuleNameTakenError(err)
      throw err
    }
  }

  /** The rule at `version` changed and at version + 1; null when it is gone or no longer at `version`. */
  async function update(id: string, version: number, changes: RuleUpdate): Promise<StoredRule | null> {
    try {
      const { rows } = await pool.query<RuleRow>(
        `WITH r AS (
           UPDATE rules SET
             name = COALESCE($3, name),
             scope = COALESCE($4, scope),
             enabled = COALESCE($5, enabled),
             match = COALESCE($6::jsonb, match),
             version = version + 1,
             updated_at = now()
           WHERE id = $1 AND version = $2 RETURNING *
         ) ${WITH_OWNER}`,
        [
          id,
          version,
          changes.name ?? null,
          changes.scope ?? null,
          changes.enabled ?? null,
          changes.match === undefined ? null : JSON.stringify(changes.match),
        ],
      )
      return rows[0] ? toRule(rows[0]) : null
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new RuleNameTakenError(err)
      throw err
    }
  }

  /** False when the rule is gone or no longer at `version`. Its entries go with it (cascade). */
  async function remove(id: string, version: number): Promise<boolean> {
    const { rowCount } = await pool.query('DELETE FROM rules WHERE id = $1 AND version = $2', [id, version])
    return rowCount === 1
  }

  /**
   * Replaces a watch list's entries, all or none, in one transaction: the version check and bump
   * first (which also locks the rule against a concurrent replacement), then one DELETE and one
   * INSERT of every entry from arrays (a single statement however many entries).
   */
  async function replaceEntries(
    id: string,
    version: number,
    entries: readonly WatchEntry[],
  ): Promise<StoredRule | null> {
    return inTransaction(pool, async (client) => {
      const { rows } = await client.query<RuleRow>(
        `WITH r AS (
           UPDATE rules SET entry_count = $3, version = version + 1, updated_at = now()
           WHERE id = $1 AND version = $2 RETURNING *
         ) ${WITH_OWNER}`,
        [id, version, entries.length],
      )
      if (!rows[0]) return null
      await client.query('DELETE FROM rule_entries WHERE rule_id = $1', [id])
      if (entries.length > 0) {
        await client.query(
          `INSERT INTO rule_entries (rule_id, position, make, model, year_min, year_max)
           SELECT $1, e.* FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::int[]) AS e`,
          [
            id,
            entries.map((_, i) => i),
            entries.map((e) => e.make),
            entries.map((e) => e.model),
            entries.map((e) => e.yearMin ?? null),
            entries.map((e) => e.yearMax ?? null),
          ],
        )
      }
      return toRule(rows[0])
    })
  }

  return {
    get,
    listVisible,
    create,
    update,
    remove,
    replaceEntries,
    entries: (id: string) => readEntries(pool, id),
  }
}

export type RulesRepository = ReturnType<typeof createRulesRepository>

/** A watch list's entries in upload order. */
export async function readEntries(db: Queryable, ruleId: string): Promise<WatchEntry[]> {
  const { rows } = await db.query<{
    make: string
    model: string
    year_min: number | null
    year_max: number | null
  }>('SELECT make, model, year_min, year_max FROM rule_entries WHERE rule_id = $1 ORDER BY position', [
    ruleId,
  ])
  return rows.map((row) => ({
    make: row.make,
    model: row.model,
    ...(row.year_min === null ? {} : { yearMin: row.year_min }),
    ...(row.year_max === null ? {} : { yearMax: row.year_max }),
  }))
}

/** A rule whole, as the changelog carries it (entries included); null when it no longer exists. */
export async function readRule(db: Queryable, id: string): Promise<Rule | null> {
  const { rows } = await db.query<Omit<RuleRow, 'username'>>('SELECT * FROM rules WHERE id = $1', [id])
  const row = rows[0]
  if (!row) return null
  return {
    id: row.id,
    version: row.version,
    name: row.name,
    owner: row.owner_id,
    scope: row.scope,
    enabled: row.enabled,
    watchlist: row.watchlist,
    match: row.match,
    entries: row.watchlist ? await readEntries(db, id) : [],
  }
}
