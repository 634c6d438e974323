import { z } from 'zod'
import type { DetectionDocument } from './detection.js'

export const RULE_SCOPES = ['private', 'shared'] as const
export type RuleScope = (typeof RULE_SCOPES)[number]

/**
 * A rule an alert matched, as the alert names it. `owner` (a user id) is carried on the alerts
 * topic for private rules only, so that every exit can decide who may see the alert; it is
 * removed before an alert leaves the system (see `alertForReader` in `@intellisite/alert-rules`).
 */
export const alertRuleSchema = z.object({
  id: z.string().min(1).max(64),
  version: z.number().int().positive(),
  name: z.string().min(1).max(100),
  scope: z.enum(RULE_SCOPES),
  owner: z.string().min(1).max(64).optional(),
})
export type AlertRule = z.infer<typeof alertRuleSchema>

/** The message on `intellisite.alerts`, keyed by the detection id. */
export const alertSchema = z.object({
  id: z.string().min(1),
  detectedAt: z.iso.datetime(),
  year: z.number().int(),
  make: z.string(),
  model: z.string(),
  category: z.string(),
  /** Why it alerted, e.g. `category matches SUV`. */
  reason: z.string(),
  /**
   * Every rule the detection matched, the built-in `SUSPICIOUS_VEHICLE` rule first. Absent on
   * alerts written before rules existed: those were raised by the built-in rule alone.
   */
  rules: z.array(alertRuleSchema).optional(),
})
export type Alert = z.infer<typeof alertSchema>

export function buildAlert(document: DetectionDocument, reason: string, rules?: readonly AlertRule[]): Alert {
  return {
    id: document._id,
    detectedAt: document.detectedAt.toISOString(),
    year: document.year,
    make: document.make,
    model: document.model,
    category: document.category,
    reason,
    ...(rules === undefined ? {} : { rules: [...rules] }),
  }
}

/**
 * Each rule's JSON, written once: the rule index hands every alert of one rule version the same
 * `AlertRule` object, which is never changed once built (a new version is a new object).
 */
const ruleJson = new WeakMap<AlertRule, string>()

function jsonOfRule(rule: AlertRule): string {
  let json = ruleJson.get(rule)
  if (json === undefined) {
    json = JSON.stringify(rule)
    ruleJson.set(rule, json)
  }
  return json
}

/**
 * `JSON.stringify(buildAlert(document, reason, rules))`, byte for byte (same fields, same order),
 * without building the alert: each field is written by JSON.stringify, each rule's JSON once per
 * rule version. Consumers parse these bytes, and tests compare the two.
 */
export function alertJson(document: DetectionDocument, reason: string, rules?: readonly AlertRule[]): string {
  let json =
    `{"id":${JSON.stringify(document._id)},"detectedAt":${JSON.stringify(document.detectedAt.toISOString())}` +
    `,"year":${JSON.stringify(document.year)},"make":${JSON.stringify(document.make)}` +
    `,"model":${JSON.stringify(document.model)},"category":${JSON.stringify(document.category)}` +
    `,"reason":${JSON.stringify(reason)}`
  if (rules !== undefined) {
    json += ',"rules":['
    for (let i = 0; i < rules.length; i++) json += (i === 0 ? '' : ',') + jsonOfRule(rules[i]!)
    json += ']'
  }
  return `${json}}`
}
