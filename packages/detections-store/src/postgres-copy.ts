import type { PoolClient } from 'pg'
import { from as copyFrom } from 'pg-copy-streams'

/** COPY text format: backslash, tab, newline and carriage return are escaped; NULL is `\N`. */
function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replaceAll('\\', '\\\\').replaceAll('\t', '\\t').replaceAll('\n', '\\n').replaceAll('\r', '\\r')
    : value
}

/** A text[] literal, each element quoted (tokens may hold any character but `,`). */
export function textArrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`
}

export type CopyValue = string | number | boolean

/** Rows in COPY text format, one line each. */
export function copyLines(rows: Iterable<readonly CopyValue[]>): string {
  let text = ''
  for (const row of rows) {
    let line = ''
    for (let i = 0; i < row.length; i++) {
      const value = row[i]!
      if (i > 0) line += '\t'
      line +=
        typeof value === 'string'
          ? copyText(value)
          : value === true
            ? 't'
            : value === false
              ? 'f'
              : String(value)
    }
    text += `${line}\n`
  }
  return text
}

/**
 * `COPY <target> FROM STDIN` with `text` as its whole input, on a client the caller holds. The
 * pool's `query_timeout` does not cover a COPY, so a server that stops answering mid-COPY (a cut
 * that sends no reset) is given `timeoutMs`, after which the connection is closed and the COPY fails.
 */
export function copyInto(
  client: PoolClient,
  target: string,
  text: string,
  timeoutMs = 30_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(`COPY ${target} FROM STDIN`))
    const timer = setTimeout(() => {
      reject(new Error(`COPY into ${target} did not finish within ${timeoutMs} ms`))
      ;(client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
    }, timeoutMs)
    stream.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    stream.on('finish', () => {
      clearTimeout(timer)
      resolve()
    })
    stream.end(text)
  })
}
