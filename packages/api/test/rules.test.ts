import { randomUUID } from 'node:crypto'
import { BUILTIN_RULE_ID } from '@intellisite/alert-rules'
import { beforeAll, describe, expect, it } from 'vitest'
import { createUserAndToken, type TestApp, useTestApp } from './helper.js'

const ADMIN = { username: 'rules-admin', password: 'admin-password-123' }

async function login(t: TestApp, credentials: { username: string; password: string }) {
  const response = await t.inject({ method: 'POST', url: '/auth/token', payload: credentials })
  expect(response.statusCode).toBe(200)
  return { authorization: `Bearer ${response.json<{ access_token: string }>().access_token}` }
}

type Headers = Record<string, string>
interface RuleBody {
  id: string
  version: number
  name: string
  scope: string
  enabled: boolean
  watchlist: boolean
  match: Record<string, unknown>
  entryCount: number
  builtin: boolean
  owner: { id: string; username: string } | null
  createdAt: string | null
  updatedAt: string | null
}

describe('alert rules', () => {
  const t = useTestApp({
    env: {
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
      SUSPICIOUS_VEHICLE: 'SUV, Pickup',
    },
  })
  let admin: Headers
  let alice: { headers: Headers; user: { id: string }; username: string }
  let bob: { headers: Headers; user: { id: string } }

  beforeAll(async () => {
    admin = await login(t, ADMIN)
    alice = await createUserAndToken(t)
    bob = await createUserAndToken(t)
  })

  const create = (headers: Headers, payload: object) =>
    t.inject({ method: 'POST', url: '/rules', headers, payload })

  async function created(headers: Headers, payload: object): Promise<RuleBody> {
    const response = await create(headers, payload)
    expect(response.statusCode, response.body).toBe(201)
    return response.json<RuleBody>()
  }

  it('creates a private rule: 201, Location, ETag, and the rule as stored', async () => {
    const response = await create(alice.headers, {
      name: '  Old Land Cruisers ',
      match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }], year: { max: 2005 } },
    })
    expect(response.statusCode).toBe(201)
    const rule = response.json<RuleBody>()
    expect(rule).toMatchObject({
      version: 1,
      name: 'Old Land Cruisers',
      scope: 'private',
      enabled: true,
      watchlist: false,
      match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }], year: { max: 2005 } },
      entryCount: 0,
      builtin: false,
      owner: { id: alice.user.id, username: alice.username },
    })
    expect(response.headers.location).toBe(`/rules/${rule.id}`)
    expect(response.headers.etag).toBe('"1"')
    const read = await t.inject({ method: 'GET', url: `/rules/${rule.id}`, headers: alice.headers })
    expect(read.statusCode).toBe(200)
    expect(read.json()).toEqual(rule)
    expect(read.headers.etag).toBe('"1"')
  })

  it('lists the built-in rule first, then shared rules, then the caller own private ones', async () => {
    const shared = await created(admin, {
      name: `shared ${randomUUID()}`,
      scope: 'shared',
      match: { make: ['Jeep'] },
    })
    const mine = await created(bob.headers, { name: 'bob list', match: { category: ['Pickup'] } })
    const response = await t.inject({ method: 'GET', url: '/rules?limit=200', headers: bob.headers })
    expect(response.statusCode).toBe(200)
    const page = response.json<{ items: RuleBody[]; total: number; skip: number; limit: number }>()
    expect(page.items[0]).toEqual({
      id: BUILTIN_RULE_ID,
      version: 1,
      name: 'SUSPICIOUS_VEHICLE',
      scope: 'shared',
      enabled: true,
      watchlist: false,
      match: { category: ['SUV', 'Pickup'] },
      entryCount: 0,
      builtin: true,
      owner: null,
      createdAt: null,
      updatedAt: null,
    })
    const ids = page.items.map((r) => r.id)
    expect(ids.indexOf(shared.id)).toBeGreaterThan(0)
    expect(ids.indexOf(mine.id)).toBeGreaterThan(ids.indexOf(shared.id))
    // Alice's private rules are not Bob's to see.
    expect(page.items.every((r) => r.builtin || r.scope === 'shared' || r.owner?.id === bob.user.id)).toBe(
      true,
    )
    expect(page).toMatchObject({ total: ids.length, skip: 0, limit: 200 })

    const second = await t.inject({ method: 'GET', url: '/rules?skip=1&limit=1', headers: bob.headers })
    expect(second.json()).toMatchObject({ items: [{ id: ids[1] }], total: ids.length, skip: 1, limit: 1 })
    const first = await t.inject({ method: 'GET', url: '/rules?limit=1', headers: bob.headers })
    expect(first.json()).toMatchObject({ items: [{ id: BUILTIN_RULE_ID }], total: ids.length })
    const builtin = await t.inject({ method: 'GET', url: `/rules/${BUILTIN_RULE_ID}`, headers: bob.headers })
    expect(builtin.json()).toMatchObject({ builtin: true })
    expect(builtin.headers.etag).toBe('"1"')
  })

  it('answers another user private rule exactly as an unknown id (404, same body)', async () => {
    const secret = await created(alice.headers, { name: 'alice secret', match: { make: ['Kia'] } })
    const unknown = randomUUID()
    const requests = (id: string) => [
      { method: 'GET' as const, url: `/rules/${id}` },
      { method: 'PATCH' as const, url: `/rules/${id}`, payload: { enabled: false } },
      { method: 'DELETE' as const, url: `/rules/${id}` },
      { method: 'GET' as const, url: `/rules/${id}/entries` },
      {
        method: 'PUT' as const,
        url: `/rules/${id}/entries`,
        payload: 'Toyota,Camry\n',
        headers: { ...bob.headers, 'content-type': 'text/csv' },
      },
    ]
    const strip = (body: Record<string, unknown>) => {
      const { requestId: _r, instance: _i, ...rest } = body
      return rest
    }
    const theirs = requests(secret.id)
    const nobody = requests(unknown)
    for (const [i, request] of theirs.entries()) {
      const a = await t.inject({ headers: bob.headers, ...request })
      const b = await t.inject({ headers: bob.headers, ...nobody[i]! })
      expect(a.statusCode, `${request.method} ${request.url}`).toBe(404)
      expect(b.statusCode).toBe(404)
      expect(a.json().code).toBe('RULE_NOT_FOUND')
      expect(strip(a.json())).toEqual(strip(b.json()))
    }
    // Nothing was changed through those attempts.
    const still = await t.inject({ method: 'GET', url: `/rules/${secret.id}`, headers: alice.headers })
    expect(still.json()).toMatchObject({ version: 1, enabled: true })
  })

  it('keeps shared rules to admins: 403 for a user creating, sharing, editing or deleting one', async () => {
    const sharing = await create(alice.headers, {
      name: 'mine to share',
      scope: 'shared',
      match: { make: ['Kia'] },
    })
    expect(sharing.statusCode).toBe(403)
    expect(sharing.json().code).toBe('FORBIDDEN')

    const shared = await created(admin, { name: 'fleet', scope: 'shared', match: { make: ['Ford'] } })
    expect(shared.owner?.username).toBe(ADMIN.username)
    // A user sees it (so 403, not 404: nothing is revealed) and may not change it.
    expect(
      (await t.inject({ method: 'GET', url: `/rules/${shared.id}`, headers: alice.headers })).statusCode,
    ).toBe(200)
    for (const request of [
      { method: 'PATCH' as const, url: `/rules/${shared.id}`, payload: { enabled: false } },
      { method: 'DELETE' as const, url: `/rules/${shared.id}` },
    ]) {
      const response = await t.inject({ headers: alice.headers, ...request })
      expect(response.statusCode).toBe(403)
      expect(response.json().code).toBe('FORBIDDEN')
    }

    const own = await created(alice.headers, { name: 'to be shared', match: { make: ['Kia'] } })
    const patch = await t.inject({
      method: 'PATCH',
      url: `/rules/${own.id}`,
      headers: alice.headers,
      payload: { scope: 'shared' },
    })
    expect(patch.statusCode).toBe(403)

    // The admin may.
    const edited = await t.inject({
      method: 'PATCH',
      url: `/rules/${shared.id}`,
      headers: admin,
      payload: { enabled: false },
    })
    expect(edited.statusCode).toBe(200)
    expect(edited.json()).toMatchObject({ enabled: false, version: 2 })
    expect(
      (await t.inject({ method: 'DELETE', url: `/rules/${shared.id}`, headers: admin })).statusCode,
    ).toBe(204)
  })

  it('reads the role from the database: a promotion counts at once, with the same token', async () => {
    const carol = await createUserAndToken(t)
    const payload = { name: 'carol shared', scope: 'shared', match: { make: ['Kia'] } }
    expect((await create(carol.headers, payload)).statusCode).toBe(403)
    await t.pool.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [carol.user.id])
    expect((await create(carol.headers, payload)).statusCode).toBe(201)
    const me = await t.inject({ method: 'GET', url: '/users/me', headers: carol.headers })
    expect(me.json()).toMatchObject({ id: carol.user.id, role: 'admin' })
  })

  it('patches: bumps the version, returns the new ETag, and honours If-Match', async () => {
    const rule = await created(alice.headers, { name: 'patch me', match: { make: ['Kia'] } })
    const url = `/rules/${rule.id}`
    const patch = (payload: object, headers: Headers = {}) =>
      t.inject({ method: 'PATCH', url, headers: { ...alice.headers, ...headers }, payload })

    const renamed = await patch(
      { name: 'patched', match: { make: ['Hyundai'], year: { min: 2010 } } },
      { 'if-match': '"1"' },
    )
    expect(renamed.statusCode).toBe(200)
    expect(renamed.headers.etag).toBe('"2"')
    expect(renamed.json()).toMatchObject({
      version: 2,
      name: 'patched',
      match: { make: ['Hyundai'], year: { min: 2010 } },
    })
    expect(new Date(renamed.json().updatedAt).getTime()).toBeGreaterThanOrEqual(
      new Date(rule.updatedAt!).getTime(),
    )

    for (const stale of ['"1"', 'W/"2"', '"2', 'two', '', '"1", "3"']) {
      const response = await patch({ enabled: false }, { 'if-match': stale })
      expect(response.statusCode, stale).toBe(412)
      expect(response.json().code).toBe('PRECONDITION_FAILED')
    }
    expect((await patch({ enabled: false }, { 'if-match': '"7", "2"' })).statusCode).toBe(200)
    const any = await patch({ enabled: true }, { 'if-match': '*' })
    expect(any.json()).toMatchObject({ version: 4, enabled: true })
    const plain = await patch({ scope: 'private' })
    expect(plain.json()).toMatchObject({ version: 5 })
  })

  it('lets exactly one of two concurrent PATCHes at the same version win', async () => {
    const rule = await created(alice.headers, { name: 'raced', match: { make: ['Kia'] } })
    const responses = await Promise.all(
      ['Honda', 'Mazda', 'Subaru'].map((make) =>
        t.inject({
          method: 'PATCH',
          url: `/rules/${rule.id}`,
          headers: { ...alice.headers, 'if-match': '"1"' },
          payload: { match: { make: [make] } },
        }),
      ),
    )
    expect(responses.map((r) => r.statusCode).sort()).toEqual([200, 412, 412])
    // Without If-Match, concurrent changes all apply, one version each.
    const blind = await Promise.all(
      [1, 2, 3].map((i) =>
        t.inject({
          method: 'PATCH',
          url: `/rules/${rule.id}`,
          headers: alice.headers,
          payload: { name: `raced ${i}` },
        }),
      ),
    )
    expect(blind.map((r) => r.statusCode)).toEqual([200, 200, 200])
    expect(blind.map((r) => r.json().version).sort()).toEqual([3, 4, 5])
  })

  it('deletes with If-Match, then answers 404', async () => {
    const rule = await created(alice.headers, { name: 'short-lived', match: { make: ['Kia'] } })
    const url = `/rules/${rule.id}`
    const stale = await t.inject({ method: 'DELETE', url, headers: { ...alice.headers, 'if-match': '"9"' } })
    expect(stale.statusCode).toBe(412)
    const deleted = await t.inject({
      method: 'DELETE',
      url,
      headers: { ...alice.headers, 'if-match': '"1"' },
    })
    expect(deleted.statusCode).toBe(204)
    expect(deleted.body).toBe('')
    expect((await t.inject({ method: 'GET', url, headers: alice.headers })).statusCode).toBe(404)
    expect((await t.inject({ method: 'DELETE', url, headers: alice.headers })).statusCode).toBe(404)
  })

  it('keeps the built-in rule read-only: 409 BUILTIN_RULE', async () => {
    for (const headers of [alice.headers, admin]) {
      for (const request of [
        { method: 'PATCH' as const, url: `/rules/${BUILTIN_RULE_ID}`, payload: { enabled: false } },
        { method: 'DELETE' as const, url: `/rules/${BUILTIN_RULE_ID}` },
        {
          method: 'PUT' as const,
          url: `/rules/${BUILTIN_RULE_ID}/entries`,
          payload: 'Toyota,Camry\n',
          headers: { ...headers, 'content-type': 'text/csv' },
        },
      ]) {
        const response = await t.inject({ headers, ...request })
        expect(response.statusCode, `${request.method} ${request.url}`).toBe(409)
        expect(response.json()).toMatchObject({
          code: 'BUILTIN_RULE',
          detail: expect.stringContaining('SUSPICIOUS_VEHICLE'),
        })
      }
    }
  })

  it('refuses duplicate names per owner (case-insensitively) and the reserved name, with 409', async () => {
    await created(alice.headers, { name: 'Duplicated', match: { make: ['Kia'] } })
    const again = await create(alice.headers, { name: 'duplicated', match: { make: ['Kia'] } })
    expect(again.statusCode).toBe(409)
    expect(again.json().code).toBe('RULE_NAME_TAKEN')
    // Another owner may use it.
    expect((await create(bob.headers, { name: 'Duplicated', match: { make: ['Kia'] } })).statusCode).toBe(201)
    for (const name of ['SUSPICIOUS_VEHICLE', 'suspicious_vehicle']) {
      const reserved = await create(admin, { name, scope: 'shared', match: { make: ['Kia'] } })
      expect(reserved.statusCode).toBe(409)
      expect(reserved.json().code).toBe('RULE_NAME_RESERVED')
    }
    const other = await created(alice.headers, { name: 'other', match: { make: ['Kia'] } })
    const rename = await t.inject({
      method: 'PATCH',
      url: `/rules/${other.id}`,
      headers: alice.headers,
      payload: { name: 'DUPLICATED' },
    })
    expect(rename.statusCode).toBe(409)
    expect(rename.json().code).toBe('RULE_NAME_TAKEN')
  })

  const invalidCreates: [string, unknown][] = [
    ['no name', { match: { make: ['Kia'] } }],
    ['a blank name', { name: '   ', match: { make: ['Kia'] } }],
    ['a name over 100 characters', { name: 'n'.repeat(101), match: { make: ['Kia'] } }],
    ['a huge name', { name: 'n'.repeat(50_000), match: { make: ['Kia'] } }],
    ['a NUL in the name', { name: 'a\u0000b', match: { make: ['Kia'] } }],
    ['a name that is a number', { name: 42, match: { make: ['Kia'] } }],
    ['an unknown field', { name: 'x', match: { make: ['Kia'] }, owner: 'someone' }],
    ['a role field', { name: 'x', match: { make: ['Kia'] }, role: 'admin' }],
    ['no match on a plain rule', { name: 'x' }],
    ['an empty match on a plain rule', { name: 'x', match: {} }],
    ['an unknown match field', { name: 'x', match: { colour: ['red'] } }],
    ['an empty make list', { name: 'x', match: { make: [] } }],
    ['a blank make', { name: 'x', match: { make: [' '] } }],
    ['a NUL in a make', { name: 'x', match: { make: ['K\u0000ia'] } }],
    ['a year range with min above max', { name: 'x', match: { year: { min: 2020, max: 2010 } } }],
    ['an empty year range', { name: 'x', match: { year: {} } }],
    ['a year out of bounds', { name: 'x', match: { year: { min: 1200 } } }],
    ['a fractional year', { name: 'x', match: { year: { min: 2000.5 } } }],
    ['an unknown scope', { name: 'x', scope: 'public', match: { make: ['Kia'] } }],
    ['enabled as a string', { name: 'x', enabled: 'yes', match: { make: ['Kia'] } }],
    ['a model without make', { name: 'x', match: { model: [{ model: 'Camry' }] } }],
    ['too many makes', { name: 'x', match: { make: Array.from({ length: 1001 }, (_, i) => `m${i}`) } }],
    ['an array body', [{ name: 'x' }]],
    ['a string body', 'rule'],
    ['null', null],
  ]
  it.each(invalidCreates)('answers 400 for %s, creating nothing', async (_name, payload) => {
    const before = await t.pool.query('SELECT count(*)::int AS n FROM rules')
    const response = await t.inject({
      method: 'POST',
      url: '/rules',
      headers: { ...alice.headers, 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    })
    expect(response.statusCode, response.body).toBe(400)
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(['VALIDATION_FAILED', 'MALFORMED_BODY']).toContain(response.json().code)
    const after = await t.pool.query('SELECT count(*)::int AS n FROM rules')
    expect(after.rows[0].n).toBe(before.rows[0].n)
  })

  it('answers 400 for bodies that are not JSON, 415 for other media types, 413 when too large', async () => {
    const post = (payload: string, contentType: string) =>
      t.inject({
        method: 'POST',
        url: '/rules',
        headers: { ...alice.headers, 'content-type': contentType },
        payload,
      })
    expect((await post('{"name":', 'application/json')).json().code).toBe('MALFORMED_BODY')
    expect((await post('', 'application/json')).statusCode).toBe(400)
    expect((await post('name,match', 'text/csv')).statusCode).toBe(415)
    expect((await post('<rule/>', 'application/xml')).statusCode).toBe(415)
    // The largest match the schema allows fits the body limit; past the limit is 413.
    const largest = {
      name: 'largest match',
      match: {
        category: Array.from({ length: 1000 }, (_, i) => `${i}`.padEnd(200, 'c')),
        make: Array.from({ length: 1000 }, (_, i) => `${i}`.padEnd(100, 'm')),
        model: Array.from({ length: 1000 }, (_, i) => ({
          make: `${i}`.padEnd(100, 'm'),
          model: 'x'.repeat(100),
        })),
      },
    }
    const accepted = await post(JSON.stringify(largest), 'application/json')
    expect(accepted.statusCode, accepted.body.slice(0, 300)).toBe(201)
    const huge = await post(
      JSON.stringify({ name: 'x', match: { make: ['k'.repeat(1_100_000)] } }),
      'application/json',
    )
    expect(huge.statusCode).toBe(413)
    expect(huge.json().code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('validates PATCH strictly and answers 400 for an empty match on a plain rule', async () => {
    const rule = await created(alice.headers, { name: 'strict patch', match: { make: ['Kia'] } })
    const url = `/rules/${rule.id}`
    for (const payload of [
      { watchlist: true },
      { owner: bob.user.id },
      { version: 7 },
      { name: '' },
      { match: { year: { min: 2001, max: 2000 } } },
      { match: {} },
      { enabled: 1 },
    ]) {
      const response = await t.inject({ method: 'PATCH', url, headers: alice.headers, payload })
      expect(response.statusCode, JSON.stringify(payload)).toBe(400)
    }
    expect((await t.inject({ method: 'GET', url, headers: alice.headers })).json()).toMatchObject({
      version: 1,
    })
  })

  it('answers 400 for a malformed id and paging out of bounds, never 500', async () => {
    for (const url of [
      '/rules/not-a-uuid',
      '/rules/123',
      `/rules/${'a'.repeat(150)}`,
      '/rules?limit=0',
      '/rules?limit=201',
      '/rules?skip=-1',
      '/rules?limit=x',
    ]) {
      const response = await t.inject({ method: 'GET', url, headers: alice.headers })
      expect(response.statusCode, url).toBe(400)
    }
    const patch = await t.inject({ method: 'PATCH', url: '/rules/nope', headers: alice.headers, payload: {} })
    expect(patch.statusCode).toBe(400)
  })

  it('requires a token on every rules route', async () => {
    for (const [method, url] of [
      ['GET', '/rules'],
      ['POST', '/rules'],
      ['GET', `/rules/${BUILTIN_RULE_ID}`],
      ['PATCH', `/rules/${BUILTIN_RULE_ID}`],
      ['DELETE', `/rules/${BUILTIN_RULE_ID}`],
      ['GET', `/rules/${BUILTIN_RULE_ID}/entries`],
      ['PUT', `/rules/${BUILTIN_RULE_ID}/entries`],
    ] as const) {
      const response = await t.inject({ method, url })
      expect(response.statusCode, `${method} ${url}`).toBe(401)
    }
  })

  it('documents every rules operation with a tag, an operation id and security', async () => {
    const spec = (await t.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { operationId?: string; tags?: string[]; security?: unknown[] }>>
    }>()
    const operations = Object.entries(spec.paths)
      .filter(([path]) => path.startsWith('/rules'))
      .flatMap(([, item]) => Object.values(item))
    expect(operations.map((o) => o.operationId).sort()).toEqual([
      'createRule',
      'deleteRule',
      'getRule',
      'getRuleEntries',
      'listRules',
      'replaceRuleEntries',
      'updateRule',
    ])
    for (const operation of operations) {
      expect(operation.tags).toEqual(['rules'])
      expect(operation.security?.length).toBeGreaterThan(0)
    }
  })
})
