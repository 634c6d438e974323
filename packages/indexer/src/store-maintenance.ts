import type { DetectionsRepository, RetentionPolicy } from '@intellisite/detections-store'
import type { Logger } from 'pino'

export interface StoreMaintenanceOptions {
  repository: Pick<DetectionsRepository, 'maintain'>
  policy: RetentionPolicy
  intervalMs: number
  logger: Logger
}

/**
 * Runs the store's maintenance (the coming days' partitions, retention) now and then every
 * `intervalMs`. Every indexer replica runs the timer; the store lets one pass run at a time and the
 * others skip. A failed pass is logged and tried again at the next tick: the store keeps working
 * meanwhile (an insert creates a missing day itself), it only keeps old data a little longer.
 */
export function createStoreMaintenance({ repository, policy, intervalMs, logger }: StoreMaintenanceOptions) {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()

  async function pass(): Promise<void> {
    try {
      const { ran, dropped } = await repository.maintain(policy)
      if (dropped.length > 0) logger.info({ dropped }, 'retention removed old data')
      else logger.debug({ ran }, 'store maintenance done')
    } catch (err) {
      logger.warn({ err }, 'store maintenance failed, trying again at the next interval')
    }
  }

  function start(): void {
    running = pass()
    timer = setInterval(() => {
      running = running.then(pass)
    }, intervalMs)
    timer.unref()
  }

  /** Stops the timer and waits for a pass under way, so the store can be closed after it. */
  async function stop(): Promise<void> {
    clearInterval(timer)
    await running
  }

  return { start, stop }
}
