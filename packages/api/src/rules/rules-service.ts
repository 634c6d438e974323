import {
  BUILTIN_RULE_ID,
  BUILTIN_RULE_NAME,
  isEmptyMatch,
  MAX_WATCHLIST_ENTRIES as MAX_ENTRIES,
  RULES_MAX_MESSAGE_BYTES,
  type Rule,
  ruleRecord,
} from '@intellisite/alert-rules'
import { errorCode } from '@intellisite/common'
import { ifMatchAllows } from '../http/entity-tag.js'
import { HttpError } from '../http/problem.js'
import type { User, UsersRepository } from '../users/users-repository.js'
import type { RulesRepository, StoredRule } from './rules-repository.js'
import type { RuleChanges, RuleView } from './rules-schemas.js'
import { formatWatchlistCsv, parseWatchlistCsv } from './watchlist-csv.js'

export interface RulesServiceOptions {
  repository: RulesRepository
  users: Pick<UsersRepository, 'findById'>
  /** The built-in rule as SUSPICIOUS_VEHICLE configures it. */
  builtin: Rule
  /** Called after every committed change (the changelog relay publishes it). */
  onChange?: () => void
}

export interface NewRuleInput {
  name: string
  scope: 'private' | 'shared'
  enabled: boolean
  watchlist: boolean
  match?: RuleView['match']
}

// The same answer for a rule that does not exist and one the caller may not see: ids are not
// probed for other users' private rules.
const notFound = () => new HttpError('RULE_NOT_FOUND', 'No such rule.')
const builtinIsReadOnly = () =>
  new HttpError(
    'BUILTIN_RULE',
    `The built-in rule ${BUILTIN_RULE_NAME} is configured by SUSPICIOUS_VEHICLE and cannot be changed here.`,
  )
const adminsOnly = (what: string) => new HttpError('FORBIDDEN', `Only an admin may ${what}.`)

function isReserved(name: string): boolean {
  return name.toLowerCase() === BUILTIN_RULE_NAME.toLowerCase()
}
const reservedName = () =>
  new HttpError('RULE_NAME_RESERVED', `${BUILTIN_RULE_NAME} is the built-in rule's name.`)
const nameTaken = (cause: unknown) =>
  new HttpError(
    'RULE_NAME_TAKEN',
    'The rule owner already has a rule of that name (names are case-insensitive).',
    {
      cause,
    },
  )

/** Concurrent writers are told apart by version; past this many lost races in a row, the caller retries. */
const MAX_ATTEMPTS = 5

/**
 * Who may do what with rules. Reading: the built-in rule, shared rules and one's own private
 * rules. Writing: one's own private rules; shared rules are admins' (the role is read from the
 * database for every change, never from the token). A change may carry `If-Match`; the check that
 * it holds and the version bump are one conditional UPDATE, retried on a lost race when the caller
 * gave no condition.
 */
export function createRulesService({ repository, users, builtin, onChange }: RulesServiceOptions) {
  const builtinView: RuleView = {
    id: builtin.id,
    version: builtin.version,
    name: builtin.name,
    scope: builtin.scope,
    enabled: builtin.enabled,
    watchlist: builtin.watchlist,
    match: builtin.match,
    entryCount: 0,
    builtin: true,
    owner: null,
    createdAt: null,
    updatedAt: null,
  }

  const view = (rule: StoredRule): RuleView => ({ ...rule, builtin: false })

  async function actor(userId: string): Promise<User> {
    const user = await users.findById(userId)
    if (!user) throw new HttpError('UNAUTHORIZED', 'The access token names a user that no longer exists.')
    return user
  }

  async function visible(userId: string, id: string): Promise<StoredRule> {
    const rule = await repository.get(id)
    if (!rule || (rule.scope !== 'shared' && rule.owner.id !== userId)) throw notFound()
    return rule
  }

  /**
   * Reads the rule, checks the caller may change it (`check` adds the change's own rules), then
   * tries `write` at the version read. A null from `write` means another change won the race: with
   * a condition the next round answers 412, without one it applies on the new version.
   */
  async function change<T>(
    userId: string,
    id: string,
    ifMatch: string | undefined,
    write: (rule: StoredRule) => Promise<T | null>,
    check?: (rule: StoredRule, user: User) => void,
  ): Promise<T> {
    if (id === BUILTIN_RULE_ID) throw builtinIsReadOnly()
    const user = await actor(userId)
    for (let attempt = 1; ; attempt++) {
      const rule = await visible(user.id, id)
      if (rule.scope === 'shared' && user.role !== 'admin') throw adminsOnly('change a shared rule')
      check?.(rule, user)
      if (!ifMatchAllows(ifMatch, rule.version)) {
        throw new HttpError(
          'PRECONDITION_FAILED',
          `The rule is at version ${rule.version} ("${rule.version}"): If-Match names another. Read it again, then retry.`,
        )
      }
      const result = await write(rule)
      if (result !== null) {
        onChange?.()
        return result
      }
      if (attempt >= MAX_ATTEMPTS) {
        throw new HttpError('CONFLICT', 'The rule kept changing while this change was applied; retry.')
      }
    }
  }

  return {
    async list(userId: string, { skip, limit }: { skip: number; limit: number }) {
      // The built-in rule is item 0 of the list; the stored ones follow it.
      const page = await repository.listVisible(userId, {
        skip: Math.max(0, skip - 1),
        limit: skip === 0 ? limit - 1 : limit,
      })
      const items = page.items.map(view)
      return { items: skip === 0 ? [builtinView, ...items] : items, total: page.total + 1, skip, limit }
    },

    async get(userId: string, id: string): Promise<RuleView> {
      return id === BUILTIN_RULE_ID ? builtinView : view(await visible(userId, id))
    },

    async create(userId: string, input: NewRuleInput): Promise<RuleView> {
      const user = await actor(userId)
      if (input.scope === 'shared' && user.role !== 'admin') throw adminsOnly('create a shared rule')
      if (isReserved(input.name)) throw reservedName()
      try {
        const rule = await repository.create(user.id, { ...input, match: input.match ?? {} })
        onChange?.()
        return view(rule)
      } catch (err) {
        if (errorCode(err) === 'RULE_NAME_TAKEN') throw nameTaken(err)
        throw err
      }
    },

    async update(userId: string, id: string, ifMatch: string | undefined, changes: RuleChanges) {
      if (changes.name !== undefined && isReserved(changes.name)) throw reservedName()
      try {
        const rule = await change(
          userId,
          id,
          ifMatch,
          (current) => repository.update(id, current.version, changes),
          (current, user) => {
            if (changes.scope === 'shared' && current.scope !== 'shared' && user.role !== 'admin') {
              throw adminsOnly('share a rule')
            }
            if (!current.watchlist && changes.match !== undefined && isEmptyMatch(changes.match)) {
              throw new HttpError(
                'VALIDATION_FAILED',
                'A rule that is not a watch list needs a non-empty match.',
                {
                  errors: [
                    {
                      in: 'body',
                      path: '/match',
                      message: 'a rule that is not a watch list needs a non-empty match',
                    },
                  ],
                },
              )
            }
          },
        )
        return view(rule)
      } catch (err) {
        if (errorCode(err) === 'RULE_NAME_TAKEN') throw nameTaken(err)
        throw err
      }
    },

    async remove(userId: string, id: string, ifMatch: string | undefined): Promise<void> {
      await change(userId, id, ifMatch, async (current) =>
        (await repository.remove(id, current.version)) ? true : null,
      )
    },

    async replaceEntries(
      userId: string,
      id: string,
      ifMatch: string | undefined,
      csv: string,
    ): Promise<RuleView> {
      let parsed: ReturnType<typeof parseWatchlistCsv> | undefined
      const rule = await change(
        userId,
        id,
        ifMatch,
        (current) => {
          // Parsed once the caller is known to be allowed; a lost race does not parse again.
          parsed ??= parseWatchlistCsv(csv)
          if (!parsed.ok) throw csvProblem(parsed)
          const { entries } = parsed
          const record = ruleRecord({
            ...current,
            owner: current.owner.id,
            version: current.version + 1,
            entries,
          })
          if (Buffer.byteLength(record.value ?? '') > RULES_MAX_MESSAGE_BYTES) {
            throw new HttpError(
              'WATCHLIST_TOO_LARGE',
              `The watch list would make a changelog record over ${RULES_MAX_MESSAGE_BYTES} bytes; make it smaller.`,
            )
          }
          return repository.replaceEntries(id, current.version, entries)
        },
        (current) => {
          if (!current.watchlist) throw notAWatchlist()
        },
      )
      return view(rule)
    },

    /** The watch list as CSV, and the version it was read at. */
    async entriesCsv(userId: string, id: string): Promise<{ csv: string; version: number }> {
      if (id === BUILTIN_RULE_ID) throw notAWatchlist()
      const rule = await visible(userId, id)
      if (!rule.watchlist) throw notAWatchlist()
      const entries = await repository.entries(id)
      return { csv: formatWatchlistCsv(entries), version: rule.version }
    },
  }
}

export type RulesService = ReturnType<typeof createRulesService>

const notAWatchlist = () =>
  new HttpError('NOT_A_WATCHLIST', 'This rule is not a watch list: it matches through its `match` alone.')

function csvProblem(parsed: Exclude<ReturnType<typeof parseWatchlistCsv>, { ok: true }>): HttpError {
  if (parsed.kind === 'too-many-rows') {
    return new HttpError(
      'TOO_MANY_ENTRIES',
      `A watch list holds at most ${MAX_ENTRIES} entries; row ${MAX_ENTRIES + 1} starts at line ${parsed.line}. Nothing was applied.`,
    )
  }
  const rows = parsed.invalidRows === 1 ? '1 row is' : `${parsed.invalidRows} rows are`
  const listed =
    parsed.errors.length < parsed.invalidRows
      ? ` The first ${parsed.errors.length} are listed in errors.`
      : ''
  return new HttpError('INVALID_CSV', `${rows} invalid; nothing was applied.${listed}`, {
    errors: parsed.errors,
  })
}
