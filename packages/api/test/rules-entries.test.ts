// Watch lists: PUT /rules/{id}/entries takes CSV, all rows or none; GET gives it back.
import { MAX_WATCHLIST_ENTRIES } from '@intellisite/alert-rules'
import { beforeAll, describe, expect, it } from 'vitest'
import { createUserAndToken, useTestApp } from './helper.js'

type Headers = Record<string, string>

describe('watch-list entries', () => {
  const t = useTestApp()
  let owner: Headers
  let other: Headers
  let list: { id: string; version: number }
  let plain: { id: string }

  beforeAll(async () => {
    owner = (await createUserAndToken(t)).headers
    other = (await createUserAndToken(t)).headers
    const created = await t.inject({
      method: 'POST',
      url: '/rules',
      headers: owner,
      payload: { name: 'stolen', watchlist: true },
    })
    list = created.json()
    plain = (
      await t.inject({
        method: 'POST',
        url: '/rules',
        headers: owner,
        payload: { name: 'plain', match: { make: ['Kia'] } },
      })
    ).json()
  })

  const put = (id: string, body: string | Buffer, headers: Headers = {}) =>
    t.inject({
      method: 'PUT',
      url: `/rules/${id}/entries`,
      headers: { ...owner, 'content-type': 'text/csv', ...headers },
      payload: body,
    })
  const get = (id: string, headers: Headers = owner) =>
    t.inject({ method: 'GET', url: `/rules/${id}/entries`, headers })
  const stored = async () =>
    (await t.pool.query('SELECT count(*)::int AS n FROM rule_entries WHERE rule_id = $1', [list.id])).rows[0]
      .n as number

  it('replaces the entries from CSV with a header, quotes, CRLF and a blank last line', async () => {
    const csv =
      'make,model,year_min,year_max\r\n' +
      'Toyota,Land Cruiser,2000,2005\r\n' +
      '"Mercedes-Benz","E-Class, Wagon",,\r\n' +
      '"Jeep","Wrangler ""Rubicon""",2010,\r\n' +
      'Ford,F-150\r\n' +
      '\r\n'
    const response = await put(list.id, csv)
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json()).toMatchObject({ id: list.id, entryCount: 4, version: 2, watchlist: true })
    expect(response.headers.etag).toBe('"2"')

    const read = await get(list.id)
    expect(read.statusCode).toBe(200)
    expect(read.headers['content-type']).toMatch(/^text\/csv/)
    expect(read.headers.etag).toBe('"2"')
    expect(read.body).toBe(
      'make,model,year_min,year_max\r\n' +
        'Toyota,Land Cruiser,2000,2005\r\n' +
        'Mercedes-Benz,"E-Class, Wagon",,\r\n' +
        'Jeep,"Wrangler ""Rubicon""",2010,\r\n' +
        'Ford,F-150,,\r\n',
    )
    // What GET gives, PUT takes back unchanged.
    const again = await put(list.id, read.body)
    expect(again.json()).toMatchObject({ entryCount: 4, version: 3 })
    expect((await get(list.id)).body).toBe(read.body)
  })

  it('reads LF line ends, no header, and a quoted field across lines', async () => {
    const response = await put(list.id, 'Toyota,"Land\nCruiser"\nJeep,Wrangler')
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json().entryCount).toBe(2)
    expect((await get(list.id)).body).toContain('Toyota,"Land\nCruiser",,\r\n')
  })

  it('reports a bad row by line number and applies nothing', async () => {
    const version = (await t.inject({ method: 'GET', url: `/rules/${list.id}`, headers: owner })).json()
      .version
    const before = await stored()
    const rows = ['make,model']
    for (let i = 0; i < 20; i++) rows.push(`Make${i},Model${i}`)
    rows[12] = 'Toyota,Camry,2010' // line 13: three columns
    rows[17] = 'Honda,Civic,2015,2010' // line 18: min above max
    rows[19] = 'Kia,Rio,abc,' // line 20: not a year
    const response = await put(list.id, rows.join('\n'))
    expect(response.statusCode).toBe(400)
    const problem = response.json()
    expect(problem.code).toBe('INVALID_CSV')
    expect(problem.detail).toMatch(/3 rows are invalid; nothing was applied/)
    expect(problem.errors).toEqual([
      { line: 13, reason: expect.stringMatching(/expected 2 columns .* found 3/) },
      { line: 18, reason: expect.stringMatching(/year_min must not be greater than year_max/) },
      { line: 20, reason: expect.stringMatching(/year_min must be a whole number/) },
    ])
    expect(await stored()).toBe(before)
    expect((await t.inject({ method: 'GET', url: `/rules/${list.id}`, headers: owner })).json().version).toBe(
      version,
    )
  })

  it('lists the first 100 invalid rows and counts them all', async () => {
    const rows = Array.from({ length: 250 }, (_, i) => `only-one-column-${i}`)
    const response = await put(list.id, rows.join('\n'))
    expect(response.statusCode).toBe(400)
    const problem = response.json()
    expect(problem.errors).toHaveLength(100)
    expect(problem.errors[99].line).toBe(100)
    expect(problem.detail).toMatch(/250 rows are invalid.*first 100/)
  })

  it.each([
    ['a quote inside an unquoted field', 'Toy"ota,Camry', 1],
    ['an unclosed quote', 'Toyota,Camry\n"Honda,Civic\n', 2],
    ['text after a closing quote', 'Toyota,"Camry"x', 1],
    ['a blank make', ' ,Camry', 1],
    ['a NUL', 'Toyota,Cam\u0000ry', 1],
    ['a make over 100 characters', `${'m'.repeat(101)},Camry`, 1],
    ['a year out of range', 'Toyota,Camry,1200,', 1],
    ['one column', 'Toyota', 1],
    ['five columns', 'Toyota,Camry,1,2,3', 1],
  ])('refuses %s with its line', async (_name, csv, line) => {
    const response = await put(list.id, csv)
    expect(response.statusCode, response.body).toBe(400)
    expect(response.json().errors[0].line).toBe(line)
  })

  it('refuses text that is not UTF-8', async () => {
    const before = await stored()
    const latin1 = Buffer.from('Citro\xebn,C3\n', 'latin1')
    const response = await put(list.id, latin1)
    expect(response.statusCode).toBe(400)
    expect(response.json().code).toBe('INVALID_ENCODING')
    expect(await stored()).toBe(before)
  })

  it(`accepts ${MAX_WATCHLIST_ENTRIES} rows, gives them back, and refuses one more`, async () => {
    const rows = ['make,model,year_min,year_max']
    for (let i = 0; i < MAX_WATCHLIST_ENTRIES; i++) rows.push(`Make${i % 97},Model ${i},${1990 + (i % 30)},`)
    const csv = `${rows.join('\r\n')}\r\n`
    const accepted = await put(list.id, csv)
    expect(accepted.statusCode, accepted.body.slice(0, 500)).toBe(200)
    expect(accepted.json().entryCount).toBe(MAX_WATCHLIST_ENTRIES)
    expect(await stored()).toBe(MAX_WATCHLIST_ENTRIES)
    const read = await get(list.id)
    expect(read.body).toBe(csv)

    const over = await put(list.id, `${csv}Toyota,Camry,,\r\n`)
    expect(over.statusCode).toBe(400)
    expect(over.json()).toMatchObject({
      code: 'TOO_MANY_ENTRIES',
      detail: expect.stringContaining(`line ${MAX_WATCHLIST_ENTRIES + 2}`),
    })
    expect(await stored()).toBe(MAX_WATCHLIST_ENTRIES)
  }, 120_000)

  it('answers 413 past the body limit and 415 for other media types', async () => {
    const big = await put(list.id, Buffer.alloc(17 * 1024 * 1024, 'a'))
    expect(big.statusCode).toBe(413)
    const json = await t.inject({
      method: 'PUT',
      url: `/rules/${list.id}/entries`,
      headers: owner,
      payload: { entries: [] },
    })
    expect(json.statusCode).toBe(415)
    expect(json.json().code).toBe('UNSUPPORTED_MEDIA_TYPE')
  })

  it('honours If-Match, and answers 409 NOT_A_WATCHLIST for a plain rule', async () => {
    const current = (await t.inject({ method: 'GET', url: `/rules/${list.id}`, headers: owner })).json()
      .version
    expect((await put(list.id, 'Kia,Rio\n', { 'if-match': `"${current - 1}"` })).statusCode).toBe(412)
    const applied = await put(list.id, 'Kia,Rio\n', { 'if-match': `"${current}"` })
    expect(applied.json()).toMatchObject({ entryCount: 1, version: current + 1 })
    for (const response of [await put(plain.id, 'Kia,Rio\n'), await get(plain.id)]) {
      expect(response.statusCode).toBe(409)
      expect(response.json().code).toBe('NOT_A_WATCHLIST')
    }
  })

  it('an empty upload empties the watch list', async () => {
    const response = await put(list.id, '')
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json().entryCount).toBe(0)
    expect((await get(list.id)).body).toBe('make,model,year_min,year_max\r\n')
  })

  it('keeps another user out: 404 for their entries, as for an unknown rule', async () => {
    expect((await get(list.id, other)).statusCode).toBe(404)
    expect((await put(list.id, 'Kia,Rio\n', other)).statusCode).toBe(404)
  })
})
