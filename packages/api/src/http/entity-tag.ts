/** The strong entity tag of a versioned resource: `"<version>"`. */
export function entityTag(version: number): string {
  return `"${version}"`
}

const ENTITY_TAG = /\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)/y

/**
 * Whether an `If-Match` header (RFC 9110 §13.1.1) lets a request change the resource at
 * `version`: absent or `*` always does; otherwise one of its entity tags must equal the current one
 * by strong comparison (a weak tag never does). A header that is not a list of entity tags lets
 * nothing through: a client that meant a condition must not have it ignored.
 */
export function ifMatchAllows(header: string | undefined, version: number): boolean {
  if (header === undefined) return true
  const value = header.trim()
  if (value === '*') return true
  if (value === '') return false
  const current = String(version)
  let matched = false
  ENTITY_TAG.lastIndex = 0
  while (ENTITY_TAG.lastIndex < value.length) {
    const tag = ENTITY_TAG.exec(value)
    if (!tag) return false
    if (tag[1] === undefined && tag[2] === current) matched = true
  }
  return matched
}
