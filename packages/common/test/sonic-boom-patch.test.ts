// sonic-boom (pino's destination) is patched (patches/sonic-boom@4.2.1.patch): its synchronous
// flush retried every failed write, EPIPE included, for ever. A service whose log reader is gone (a
// supervisor killed, a pipe closed) logs its last lines on the way out, and pino flushes what is
// still queued at exit: the process then spun in that loop instead of exiting, until something
// killed it.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const packageRoot = fileURLToPath(new URL('..', import.meta.url))

it('a process whose log reader has gone still exits', async () => {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { pino } from 'pino'
       const log = pino()
       log.info('the reader is still there')
       process.stdin.once('end', () => {
         setTimeout(() => {
           // The first line is still being written when the next ones queue up behind it.
           for (let i = 0; i < 3; i++) log.info('the reader has gone')
           process.exit(0)
         }, 100)
       })
       process.stdin.resume()`,
    ],
    { cwd: packageRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  await once(child.stdout, 'data')
  // Close the log reader, then tell the process to log and exit.
  child.stdout.destroy()
  child.stdin.end()
  const exited = once(child, 'exit')
  const outcome = await Promise.race([
    exited.then(() => 'exited'),
    new Promise((resolve) => setTimeout(resolve, 10_000, 'still running')),
  ])
  child.kill('SIGKILL')
  expect(outcome, stderr).toBe('exited')
})
