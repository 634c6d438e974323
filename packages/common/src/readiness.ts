/**
 * Readiness as every service answers it (`GET /readyz`): each dependency is checked with a
 * deadline, and the answer is `ready` (200) only when none is down. The indexer and the API give
 * the same shape, so one probe, dashboard or alert rule reads both.
 */
export type CheckStatus = 'up' | 'down' | 'disabled'

/**
 * A dependency check: its status, or false when down, or a promise that resolves when the
 * dependency answers (any other value, or none, means up).
 */
export type ReadinessCheck = () => unknown

/** The detections store's check also names the backend it runs on. */
export interface DetectionsCheck {
  backend: 'postgres' | 'mongodb'
  check: ReadinessCheck
}

export interface Readiness {
  status: 'ready' | 'unavailable'
  checks: Record<string, CheckStatus | { backend: DetectionsCheck['backend']; status: CheckStatus }>
}

export const READINESS_TIMEOUT_MS = 2_000

/** Runs one check: `down` when it throws, answers false, or misses the deadline. */
export async function runCheck(
  check: ReadinessCheck,
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<CheckStatus> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<CheckStatus>((resolve) => {
    timer = setTimeout(() => resolve('down'), timeoutMs)
  })
  try {
    return await Promise.race([
      Promise.resolve()
        .then(check)
        .then((result): CheckStatus => {
          if (result === false) return 'down'
          if (result === 'down' || result === 'disabled') return result
          return 'up'
        }),
      deadline,
    ])
  } catch {
    return 'down'
  } finally {
    clearTimeout(timer)
  }
}

/** Runs every check at once; the service is ready when none is down (`disabled` is not down). */
export async function checkReadiness(
  checks: Record<string, ReadinessCheck>,
  options: { detections?: DetectionsCheck; timeoutMs?: number } = {},
): Promise<Readiness> {
  const { detections, timeoutMs } = options
  const all = detections ? { ...checks, detections: detections.check } : checks
  const names = Object.keys(all)
  const results = await Promise.all(names.map((name) => runCheck(all[name]!, timeoutMs)))
  const statuses: Readiness['checks'] = Object.fromEntries(names.map((name, i) => [name, results[i]!]))
  if (detections)
    statuses.detections = { backend: detections.backend, status: statuses.detections as CheckStatus }
  const ready = results.every((status) => status !== 'down')
  return { status: ready ? 'ready' : 'unavailable', checks: statuses }
}
