import { InvalidCursorError } from './repository.js'

/** Opaque keyset cursor: base64url of `<detectedAt ms>.<id>`. */
export function encodeCursor(detectedAt: Date, id: string): string {
  return Buffer.from(`${detectedAt.getTime()}.${id}`, 'utf8').toString('base64url')
}

export function decodeCursor(cursor: string): { detectedAt: Date; id: string } {
  if (cursor.length === 0 || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new Error('not base64url')
  }
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{1,64})$/.exec(text)
  if (!match?.[1] || !match[2]) throw new Error('not a detections cursor')
  return { detectedAt: new Date(Number(match[1])), id: match[2] }
}

/** The keyset position of a page's last row. */
export interface CursorPosition {
  detectedAt: Date
  id: string
}

/** The position a list query's cursor names; {@link InvalidCursorError} when it is not one. */
export function cursorPosition(cursor: string): CursorPosition {
  try {
    return decodeCursor(cursor)
  } catch (err) {
    throw new InvalidCursorError(err)
  }
}

/**
 * A page out of the `limit + 1` rows a list query fetched: the extra row only tells that a next
 * page exists, and the cursor points after the page's last row.
 */
export function pageOf<Row, Item>(
  rows: readonly Row[],
  limit: number,
  toItem: (row: Row) => Item,
  position: (row: Row) => CursorPosition,
): { items: Item[]; nextCursor: string | null } {
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  const after = last === undefined ? undefined : position(last)
  return {
    items: page.map(toItem),
    nextCursor: rows.length > limit && after ? encodeCursor(after.detectedAt, after.id) : null,
  }
}
