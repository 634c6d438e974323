// The indexer process as main.ts runs it, plus a failpoint for crash tests:
// INDEXER_FAILPOINT=after-store:N or after-commit:N makes the process SIGKILL itself right after
// its Nth bulk write (before the transaction) or its Nth committed transaction.
import { runIndexer } from '../../src/indexer-process.js'

const spec = process.env.INDEXER_FAILPOINT ?? ''
const match = /^(after-store|after-commit):([1-9]\d*)$/.exec(spec)
if (spec !== '' && !match) {
  console.error(`INDEXER_FAILPOINT: expected after-store:N or after-commit:N, got ${spec}`)
  process.exit(2)
}
const point = match?.[1]
const count = Number(match?.[2] ?? 0)
let hits = 0
const hit = (at: string) => () => {
  if (at !== point || ++hits !== count) return
  console.error(`failpoint ${at}:${count} reached: SIGKILL`)
  process.kill(process.pid, 'SIGKILL')
}

await runIndexer({
  env: process.env,
  faults: { afterStore: hit('after-store'), afterCommit: hit('after-commit') },
})
