import { z } from 'zod'
import { type Rule, ruleSchema, type WatchEntry } from './rule.js'

// The rules changelog (ALERT_RULES_TOPIC): a compacted topic with one record per rule version,
// keyed by rule id, and a tombstone (null value) when a rule is deleted. Compaction keeps the
// newest record of each key, so reading the topic from the start to its end gives every live rule,
// once.

/**
 * A watch list of 100,000 entries is one record of a few MB before compression: the topic allows
 * records up to this size (producers send them gzip-compressed, which is what the broker checks).
 */
export const RULES_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/** Topic settings for the changelog, for the code and deployments that create it. */
export const RULES_TOPIC_CONFIG: readonly { name: string; value: string }[] = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'max.message.bytes', value: String(RULES_MAX_MESSAGE_BYTES) },
]

const FORMAT = 1

/** On the topic an entry is a tuple `[make, model, yearMin | null, yearMax | null]`: a third of the bytes. */
type EntryTuple = [string, string, number | null, number | null]

const recordSchema = z.object({
  format: z.literal(FORMAT),
  rule: z.object({ entries: z.array(z.tuple([z.string(), z.string(), z.unknown(), z.unknown()])) }).loose(),
})

export interface RuleRecordMessage {
  key: string
  value: string | null
}

export function ruleRecord(rule: Rule): RuleRecordMessage {
  const entries: EntryTuple[] = rule.entries.map((e) => [
    e.make,
    e.model,
    e.yearMin ?? null,
    e.yearMax ?? null,
  ])
  return { key: rule.id, value: JSON.stringify({ format: FORMAT, rule: { ...rule, entries } }) }
}

export function ruleTombstone(id: string): RuleRecordMessage {
  return { key: id, value: null }
}

export type DecodedRuleRecord =
  | { kind: 'upsert'; rule: Rule }
  | { kind: 'delete'; id: string }
  | { kind: 'invalid'; key: string | null; reason: string }

/**
 * Reads one changelog record. Anything that is not a rule this code understands (written by
 * someone else, or by a newer format) comes back `invalid` with the reason; it never throws.
 */
export function decodeRuleRecord(
  key: Buffer | string | null,
  value: Buffer | string | null,
): DecodedRuleRecord {
  const id = key === null ? null : key.toString()
  if (id === null || id === '') return { kind: 'invalid', key: id, reason: 'record has no key' }
  if (value === null) return { kind: 'delete', id }
  let json: unknown
  try {
    json = JSON.parse(value.toString())
  } catch {
    return { kind: 'invalid', key: id, reason: 'value is not JSON' }
  }
  const envelope = recordSchema.safeParse(json)
  if (!envelope.success)
    return { kind: 'invalid', key: id, reason: `not a rule record: ${z.prettifyError(envelope.error)}` }
  const entries: Partial<WatchEntry>[] = envelope.data.rule.entries.map(
    ([make, model, yearMin, yearMax]) => ({
      make,
      model,
      ...(yearMin === null ? {} : { yearMin: yearMin as number }),
      ...(yearMax === null ? {} : { yearMax: yearMax as number }),
    }),
  )
  const parsed = ruleSchema.safeParse({ ...envelope.data.rule, entries })
  if (!parsed.success)
    return { kind: 'invalid', key: id, reason: `invalid rule: ${z.prettifyError(parsed.error)}` }
  if (parsed.data.id !== id)
    return { kind: 'invalid', key: id, reason: `key ${id} is not the rule's id ${parsed.data.id}` }
  return { kind: 'upsert', rule: parsed.data }
}
