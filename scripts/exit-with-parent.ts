// Preloaded (`--import`) into the processes scripts/pipeline.ts starts, and into the pipeline itself.
// The children run in their own process groups so that a terminal's Ctrl-C reaches only the
// pipeline, which stops them in order; the price is that nothing stops them if the pipeline dies
// without cleaning up (SIGKILL, an OOM kill). A dead parent shows as a changed parent pid (the
// orphan is re-parented): the process then stops itself as if the parent had sent SIGTERM.
//
// The watch runs on a worker thread because the main thread may be stuck and never get back to its
// event loop (once the parent is gone, stdout is a pipe without a reader: pino's exit flush used to
// retry its EPIPE for ever, which patches/sonic-boom@4.2.1.patch ends). If the graceful stop has
// not ended the process after the same grace the pipeline gives, the worker kills it.
import { Worker } from 'node:worker_threads'

const GRACE_MS = 40_000

const watch = `
const { workerData } = require('node:worker_threads')
const timer = setInterval(() => {
  if (process.ppid === workerData.parent) return
  clearInterval(timer)
  process.kill(workerData.pid, 'SIGTERM')
  setTimeout(() => process.kill(workerData.pid, 'SIGKILL'), workerData.graceMs)
}, 500)
`

new Worker(watch, {
  eval: true,
  workerData: { parent: process.ppid, pid: process.pid, graceMs: GRACE_MS },
  stdout: false,
  stderr: false,
}).unref()
