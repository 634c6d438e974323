export { builtinRule } from './builtin-rule.js'
export {
  type DecodedRuleRecord,
  decodeRuleRecord,
  RULES_MAX_MESSAGE_BYTES,
  RULES_TOPIC_CONFIG,
  type RuleRecordMessage,
  ruleRecord,
  ruleTombstone,
} from './changelog.js'
export {
  BUILTIN_RULE_ID,
  BUILTIN_RULE_NAME,
  isEmptyMatch,
  MAX_MATCH_VALUES,
  MAX_WATCHLIST_ENTRIES,
  MAX_YEAR,
  MIN_YEAR,
  RULE_SCOPES,
  type Rule,
  type RuleMatch,
  type RuleScope,
  ruleMatchSchema,
  ruleSchema,
  type WatchEntry,
  watchEntrySchema,
  type YearRange,
  yearRangeSchema,
} from './rule.js'
export {
  createRuleIndex,
  type MatchableDetection,
  type RuleIndex,
  type RuleMatches,
  ruleReason,
} from './rule-index.js'
export {
  type AlertReader,
  alertForReader,
  canSee,
  type VisibleAlert,
  type VisibleAlertRule,
  visibleToAll,
} from './visibility.js'
