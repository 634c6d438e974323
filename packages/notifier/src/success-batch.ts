import type { AttemptRecord } from './deliveries-repository.js'

/** Successes gathered for a moment (or until there are many) and recorded in one statement. */
const SUCCESS_BATCH = 200
const SUCCESS_DELAY_MS = 5

export function createSuccessBatch(write: (attempts: readonly AttemptRecord[]) => Promise<void>) {
  let pending: { record: AttemptRecord; done: () => void; failed: (err: unknown) => void }[] = []
  let timer: NodeJS.Timeout | undefined

  function flush(): void {
    clearTimeout(timer)
    timer = undefined
    const batch = pending
    pending = []
    write(batch.map((p) => p.record)).then(
      () => {
        for (const p of batch) p.done()
      },
      (err: unknown) => {
        for (const p of batch) p.failed(err)
      },
    )
  }

  function once(record: AttemptRecord): Promise<void> {
    return new Promise((done, failed) => {
      pending.push({ record, done, failed })
      if (pending.length >= SUCCESS_BATCH) flush()
      else timer ??= setTimeout(flush, SUCCESS_DELAY_MS)
    })
  }

  return {
    /** Resolves once `record` is written; a failed write is retried for this record alone, as `persist` says. */
    async add(
      record: AttemptRecord,
      persist: (operation: () => Promise<void>) => Promise<void>,
    ): Promise<void> {
      try {
        await once(record)
      } catch {
        await persist(() => write([record]))
      }
    },
  }
}

export type SuccessBatch = ReturnType<typeof createSuccessBatch>
