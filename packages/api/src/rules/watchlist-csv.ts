import { MAX_WATCHLIST_ENTRIES, type WatchEntry, watchEntrySchema } from '@intellisite/alert-rules'
import { WATCHLIST_CSV_HEADER } from './rules-schemas.js'

export interface CsvRowError {
  /** Line of the text where the row starts, from 1. */
  line: number
  reason: string
}

export type ParsedWatchlist =
  | { ok: true; entries: WatchEntry[] }
  | { ok: false; kind: 'invalid-rows'; errors: CsvRowError[]; invalidRows: number }
  | { ok: false; kind: 'too-many-rows'; line: number }

interface CsvRecord {
  line: number
  fields: string[]
  /** Why the row cannot be read as CSV at all; its fields are then meaningless. */
  error?: string
}

const isLineEnd = (c: string | undefined) => c === '\n' || c === '\r'

/**
 * RFC 4180 records: fields separated by commas, optionally double-quoted (a quote inside doubled;
 * commas and line breaks allowed inside quotes), rows ended by CRLF, LF or CR. Blank lines are
 * skipped. A row that breaks the quoting rules is reported and reading goes on at the next line.
 */
export function* csvRecords(text: string): Generator<CsvRecord> {
  const n = text.length
  let i = 0
  let line = 1
  while (i < n) {
    const start = line
    const fields: string[] = []
    let error: string | undefined
    let quoted = false
    for (;;) {
      if (text[i] === '"') {
        quoted = true
        i++
        let value = ''
        let closed = false
        while (i < n) {
          const c = text[i]!
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"'
              i += 2
              continue
            }
            i++
            closed = true
            break
          }
          if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++
          value += c
          i++
        }
        fields.push(value)
        if (!closed) error ??= 'a quoted field is never closed'
        else if (i < n && text[i] !== ',' && !isLineEnd(text[i])) {
          error ??= 'a closing quote must end its field (write a quote inside a quoted field as "")'
          while (i < n && !isLineEnd(text[i])) i++
        }
      } else {
        const from = i
        while (i < n && text[i] !== ',' && !isLineEnd(text[i])) i++
        const value = text.slice(from, i)
        if (value.includes('"'))
          error ??= 'a quote inside an unquoted field (quote the whole field and double the quote)'
        fields.push(value)
      }
      if (i < n && text[i] === ',') {
        i++
        continue
      }
      break
    }
    if (text[i] === '\r') i++
    if (text[i] === '\n') i++
    line++
    if (!quoted && fields.length === 1 && fields[0] === '') continue
    yield error === undefined ? { line: start, fields } : { line: start, fields, error }
  }
}

const YEAR = /^\d{1,6}$/

function year(value: string | undefined, column: string): number | undefined | string {
  const trimmed = (value ?? '').trim()
  if (trimmed === '') return undefined
  return YEAR.test(trimmed)
    ? Number(trimmed)
    : `${column} must be a whole number, found "${trimmed.slice(0, 20)}"`
}

function isHeader(fields: string[]): boolean {
  return (
    (fields.length === 2 || fields.length === 4) &&
    fields.every((field, i) => field.trim().toLowerCase() === WATCHLIST_CSV_HEADER[i])
  )
}

function entryOf(record: CsvRecord): WatchEntry | string {
  if (record.error !== undefined) return record.error
  const { fields } = record
  if (fields.length !== 2 && fields.length !== 4) {
    return `expected 2 columns (make,model) or 4 (make,model,year_min,year_max), found ${fields.length}`
  }
  const yearMin = year(fields[2], 'year_min')
  const yearMax = year(fields[3], 'year_max')
  if (typeof yearMin === 'string') return yearMin
  if (typeof yearMax === 'string') return yearMax
  const parsed = watchEntrySchema.safeParse({
    make: fields[0],
    model: fields[1],
    ...(yearMin === undefined ? {} : { yearMin }),
    ...(yearMax === undefined ? {} : { yearMax }),
  })
  if (parsed.success) return parsed.data
  const column: Record<string, string> = {
    make: 'make',
    model: 'model',
    yearMin: 'year_min',
    yearMax: 'year_max',
  }
  return parsed.error.issues
    .map((issue) => {
      const key = String(issue.path[0] ?? '')
      return column[key] ? `${column[key]}: ${issue.message}` : issue.message
    })
    .join('; ')
}

/**
 * A watch list from CSV text, all of it or nothing: every invalid row is counted (the first
 * `maxErrors` reported by line), and past `maxEntries` rows reading stops.
 */
export function parseWatchlistCsv(
  text: string,
  { maxEntries = MAX_WATCHLIST_ENTRIES, maxErrors = 100 }: { maxEntries?: number; maxErrors?: number } = {},
): ParsedWatchlist {
  const entries: WatchEntry[] = []
  const errors: CsvRowError[] = []
  let invalidRows = 0
  let rows = 0
  let first = true
  for (const record of csvRecords(text)) {
    if (first) {
      first = false
      if (record.error === undefined && isHeader(record.fields)) continue
    }
    if (++rows > maxEntries) return { ok: false, kind: 'too-many-rows', line: record.line }
    const entry = entryOf(record)
    if (typeof entry !== 'string') {
      entries.push(entry)
      continue
    }
    invalidRows++
    if (errors.length < maxErrors) errors.push({ line: record.line, reason: entry })
  }
  return invalidRows === 0 ? { ok: true, entries } : { ok: false, kind: 'invalid-rows', errors, invalidRows }
}

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/

function csvField(value: string): string {
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value
}

/** A watch list as CSV with its header row, CRLF line ends (RFC 4180): what PUT takes back. */
export function formatWatchlistCsv(entries: readonly WatchEntry[]): string {
  const lines = [WATCHLIST_CSV_HEADER.join(',')]
  for (const e of entries) {
    lines.push(`${csvField(e.make)},${csvField(e.model)},${e.yearMin ?? ''},${e.yearMax ?? ''}`)
  }
  return `${lines.join('\r\n')}\r\n`
}
