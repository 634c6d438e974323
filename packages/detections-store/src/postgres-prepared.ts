import { createHash } from 'node:crypto'

/**
 * A named statement: each connection plans it a few times, then PostgreSQL may keep a generic
 * plan. With a partition a day, planning a page costs more than running it (~1.5 ms against
 * ~0.5 ms for a first page), and the generic plan still prunes partitions when it runs.
 */
export function prepared(text: string, values: unknown[]) {
  return { name: `d_${createHash('sha1').update(text).digest('base64url').slice(0, 16)}`, text, values }
}
