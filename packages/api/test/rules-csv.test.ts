// The pure parts of the rules API: the watch-list CSV format and If-Match.
import { describe, expect, it } from 'vitest'
import { entityTag, ifMatchAllows } from '../src/http/entity-tag.js'
import { csvRecords, formatWatchlistCsv, parseWatchlistCsv } from '../src/rules/watchlist-csv.js'

describe('CSV records', () => {
  const records = (text: string) => [...csvRecords(text)]

  it('splits on commas and CRLF, LF or CR, numbering lines where rows start', () => {
    expect(records('a,b\r\nc,d\ne,f\rg,h')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['c', 'd'] },
      { line: 3, fields: ['e', 'f'] },
      { line: 4, fields: ['g', 'h'] },
    ])
  })

  it('reads quoted fields with commas, doubled quotes and line breaks, and skips blank lines', () => {
    expect(records('"a,1","say ""hi"""\n\n"multi\r\nline",x\n,\n')).toEqual([
      { line: 1, fields: ['a,1', 'say "hi"'] },
      { line: 3, fields: ['multi\r\nline', 'x'] },
      { line: 5, fields: ['', ''] },
    ])
    expect(records('""\n')).toEqual([{ line: 1, fields: [''] }])
  })

  it('reports broken quoting and goes on at the next line', () => {
    expect(records('a"b,c\n"x"y,z\nok,1\n"open,2\n')).toEqual([
      { line: 1, fields: ['a"b', 'c'], error: expect.stringMatching(/unquoted/) },
      { line: 2, fields: ['x'], error: expect.stringMatching(/closing quote/) },
      { line: 3, fields: ['ok', '1'] },
      { line: 4, fields: ['open,2\n'], error: expect.stringMatching(/never closed/) },
    ])
  })
})

describe('watch-list CSV', () => {
  it('takes 2 or 4 columns, an optional header, and empty years', () => {
    expect(
      parseWatchlistCsv('MAKE, Model ,year_min,YEAR_MAX\nToyota,Camry\n Jeep , Wrangler ,,2010\n'),
    ).toEqual({
      ok: true,
      entries: [
        { make: 'Toyota', model: 'Camry' },
        { make: 'Jeep', model: 'Wrangler', yearMax: 2010 },
      ],
    })
    expect(parseWatchlistCsv('make,model\n')).toEqual({ ok: true, entries: [] })
    // A header only counts first.
    expect(parseWatchlistCsv('Toyota,Camry\nmake,model\n')).toEqual({
      ok: true,
      entries: [
        { make: 'Toyota', model: 'Camry' },
        { make: 'make', model: 'model' },
      ],
    })
  })

  it('counts every invalid row and lists the first ones', () => {
    const result = parseWatchlistCsv('a\nb\nc\nToyota,Camry\n', { maxErrors: 2 })
    expect(result).toEqual({
      ok: false,
      kind: 'invalid-rows',
      invalidRows: 3,
      errors: [
        { line: 1, reason: expect.stringMatching(/found 1/) },
        { line: 2, reason: expect.stringMatching(/found 1/) },
      ],
    })
  })

  it('stops at the first row past the limit, header not counted', () => {
    expect(parseWatchlistCsv('make,model\na,b\nc,d\n', { maxEntries: 2 }).ok).toBe(true)
    expect(parseWatchlistCsv('make,model\na,b\nc,d\ne,f\n', { maxEntries: 2 })).toEqual({
      ok: false,
      kind: 'too-many-rows',
      line: 4,
    })
  })

  it('writes what it reads back, quoting only what needs it', () => {
    const entries = [
      { make: 'Toyota', model: 'Land Cruiser', yearMin: 2000, yearMax: 2005 },
      { make: 'A "quoted", name', model: 'line\nbreak' },
    ]
    const csv = formatWatchlistCsv(entries)
    expect(csv).toBe(
      'make,model,year_min,year_max\r\nToyota,Land Cruiser,2000,2005\r\n"A ""quoted"", name","line\nbreak",,\r\n',
    )
    expect(parseWatchlistCsv(csv)).toEqual({ ok: true, entries })
  })
})

describe('If-Match', () => {
  it('lets through no header, *, and a list naming the current version', () => {
    expect(entityTag(3)).toBe('"3"')
    for (const header of [undefined, '*', ' * ', '"3"', '"1", "3"', '"1","3"', 'W/"1", "3"']) {
      expect(ifMatchAllows(header, 3), String(header)).toBe(true)
    }
  })

  it('stops a stale, weak or malformed condition', () => {
    for (const header of ['"2"', 'W/"3"', '3', '"3', '', '"3" "4"', '*, "3"', '"3";']) {
      expect(ifMatchAllows(header, 3), header).toBe(false)
    }
  })
})
