// The HAProxy in front of API replicas: renders docker/haproxy/haproxy.cfg.template, finds or
// installs Debian's haproxy (scripts/debian/ensure.sh), starts it, and reads its servers' state
// from its runtime socket. Used by `API_REPLICAS=N npm start`, the replica tests and the bench.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'

export const TEMPLATE = fileURLToPath(new URL('../../docker/haproxy/haproxy.cfg.template', import.meta.url))
const ENSURE = fileURLToPath(new URL('../debian/ensure.sh', import.meta.url))

export interface HaproxyConfigOptions {
  /** `bind` argument: `127.0.0.1:3000`, `:3000`. */
  bind: string
  /** Backend server lines, e.g. from `replicaServers`, or a `server-template` with resolvers. */
  servers: string[]
  /** Extra `global` lines (a runtime socket, a maxconn). */
  global?: string[]
  /** Sections after the template (a `resolvers` section). */
  trailer?: string[]
}

/** One `server` line per replica listening on loopback, health-checked on /readyz. */
export function replicaServers(ports: readonly number[], host = '127.0.0.1'): string[] {
  return ports.map((port, i) => `server api-${i + 1} ${host}:${port} check`)
}

export function renderHaproxyConfig(
  options: HaproxyConfigOptions,
  template = readFileSync(TEMPLATE, 'utf8'),
) {
  const indent = (lines: readonly string[]) => lines.map((line) => `    ${line}`).join('\n')
  const values: Record<string, string> = {
    bind: options.bind,
    global: indent(options.global ?? []),
    servers: indent(options.servers),
  }
  const text = template
    .split('\n')
    // A placeholder alone on its line with nothing to put there leaves no blank line behind.
    .filter((line) => !/^\s*\{\{\w+\}\}\s*$/.test(line) || values[line.trim().slice(2, -2)] !== '')
    .join('\n')
    .replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const value = values[name]
      if (value === undefined) throw new Error(`haproxy template: unknown placeholder {{${name}}}`)
      return value
    })
  return options.trailer?.length ? `${text.trimEnd()}\n\n${options.trailer.join('\n')}\n` : text
}

/** Path of Debian's haproxy, installing the package when it is missing (root only). */
export function haproxyBinary(): string {
  return execFileSync('bash', [ENSURE, 'haproxy', 'haproxy'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
}

/** Checks the file with `haproxy -c`; throws with HAProxy's own message when it is invalid. */
export function checkHaproxyConfig(file: string, binary = haproxyBinary()): void {
  execFileSync(binary, ['-c', '-q', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] })
}

/**
 * Starts haproxy in the foreground on a rendered config written to `file`. SIGUSR1 is its soft
 * stop (stop listening, let open streams end, exit), SIGTERM its hard stop.
 */
export function startHaproxy(
  file: string,
  options: HaproxyConfigOptions,
  spawnOptions: { stdio?: 'pipe' | 'ignore'; detached?: boolean; openFiles?: number } = {},
): ChildProcess {
  const binary = haproxyBinary()
  writeFileSync(file, renderHaproxyConfig(options))
  checkHaproxyConfig(file, binary)
  const stdio = spawnOptions.stdio ?? 'pipe'
  // setpriv (util-linux) makes the kernel stop haproxy when its parent dies, even of a SIGKILL,
  // as exit-with-parent does for the Node children: no proxy is left holding the port.
  // -q: its log lines go to stdout once (`log stdout`), not a second time on stderr.
  const command = ['setpriv', '--pdeathsig', 'TERM', '--', binary, '-db', '-q', '-f', file]
  // More streams than the open-files limit allows (root only): raised for this process alone.
  const args = spawnOptions.openFiles
    ? ['bash', '-c', `ulimit -n ${spawnOptions.openFiles} && exec "$@"`, 'haproxy', ...command]
    : command
  return spawn(args[0]!, args.slice(1), {
    stdio: ['ignore', stdio, stdio],
    detached: spawnOptions.detached ?? false,
  })
}

export interface ServerState {
  name: string
  /** UP, DOWN, MAINT, `UP 1/2` while rising, `DOWN 1/2` while falling… */
  status: string
  /** Sessions open on it now. */
  sessions: number
}

/** The backend's servers as HAProxy sees them, from `show stat` on its runtime socket. */
export async function serverStates(socket: string, backend = 'api'): Promise<ServerState[]> {
  const csv = await new Promise<string>((resolve, reject) => {
    const client = connect(socket)
    let out = ''
    client.setEncoding('utf8')
    client.on('connect', () => client.write('show stat\n'))
    client.on('data', (chunk: string) => {
      out += chunk
    })
    client.on('end', () => resolve(out))
    client.on('error', reject)
  })
  const [head, ...rows] = csv.replace(/^# /, '').trim().split('\n')
  const columns = head!.split(',')
  const at = (name: string) => columns.indexOf(name)
  return rows
    .map((row) => row.split(','))
    .filter(
      (cells) => cells[at('pxname')] === backend && !['FRONTEND', 'BACKEND'].includes(cells[at('svname')]!),
    )
    .map((cells) => ({
      name: cells[at('svname')]!,
      status: cells[at('status')]!,
      sessions: Number(cells[at('scur')]),
    }))
}

export const COMPOSE_CONFIG = fileURLToPath(new URL('../../docker/haproxy/haproxy.cfg', import.meta.url))

/**
 * The compose rendering: every replica of the `api` service through Docker's DNS, which answers
 * one address per container; `init-addr none` starts the proxy before any replica exists, and
 * slots without a container stay in maintenance until `--scale` fills them.
 */
export const composeHaproxyOptions: HaproxyConfigOptions = {
  bind: ':3000',
  global: ['maxconn 50000'],
  servers: ['server-template api- 1-8 api:3000 check resolvers docker init-addr none resolve-prefer ipv4'],
  trailer: [
    "# Docker's embedded DNS server: the `api` name lists one address per running replica.",
    'resolvers docker',
    '    nameserver dns 127.0.0.11:53',
    '    accepted_payload_size 8192',
    '    # Replicas come and go with `--scale`: ask again every second, forget a gone one after 10 s.',
    '    hold valid 1s',
    '    hold obsolete 10s',
  ],
}
