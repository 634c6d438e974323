/** Disables the one warning kafkajs 2.2.4 triggers on Node 24 (it sets timers with negative delays). */
export const QUIET_KAFKAJS_FLAG = '--disable-warning=TimeoutNegativeWarning'

/**
 * `node` flags for every process a test or benchmark starts on the TypeScript sources. The
 * warning flag travels in argv, not only in NODE_OPTIONS (where run.sh puts it): a child started
 * with a fresh environment, or from a runner started without run.sh, would otherwise print a
 * plain-text TimeoutNegativeWarning for each such timer. Every other warning still prints.
 */
export const TS_NODE_FLAGS: readonly string[] = [
  QUIET_KAFKAJS_FLAG,
  '--conditions=development',
  '--import',
  'tsx',
]
