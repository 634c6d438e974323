// Shared readers for the deployment tests: compose files, Dockerfiles, .env.example and the
// variables each service's config schema reads.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { configSchema as apiConfigSchema } from '../../packages/api/src/config.js'
import { configSchema as indexerConfigSchema } from '../../packages/indexer/src/config.js'
import { configSchema as notifierConfigSchema } from '../../packages/notifier/src/config.js'
import { configSchema as producerConfigSchema } from '../../packages/producer/src/config.js'

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const read = (path: string) => readFileSync(join(root, path), 'utf8')

export const COMPOSE_FILES = [
  'docker-compose.kafka.yml',
  'docker-compose.kafka-cluster.yml',
  'docker-compose.producer.yml',
  'docker-compose.indexer.yml',
]
export const SERVICES = ['indexer', 'api', 'producer', 'notifier'] as const
export type ServiceName = (typeof SERVICES)[number]

export interface ComposeService {
  image?: string
  build?: { context: string; dockerfile: string }
  command?: string[]
  container_name?: string
  ports?: string[]
  networks?: string[] | Record<string, unknown>
  environment?: Record<string, string | number | boolean | null>
  depends_on?: Record<string, { condition: string }> | string[]
  healthcheck?: { test: string[] | string; disable?: boolean }
  restart?: string
  volumes?: string[]
  expose?: string[]
  stop_signal?: string
  stop_grace_period?: string
}
export interface ComposeFile {
  name?: string
  services: Record<string, ComposeService>
  networks?: Record<string, { external?: boolean }>
  volumes?: Record<string, unknown>
  [extension: `x-${string}`]: unknown
}

/** Parsed as Compose does: YAML 1.2 with `<<` merge keys resolved, before interpolation. */
export function readCompose(path: string): ComposeFile {
  return parse(read(path), { merge: true }) as ComposeFile
}

export interface DockerfileStage {
  from: string
  name: string | undefined
  instructions: { keyword: string; args: string }[]
}
export interface Dockerfile {
  args: Record<string, string>
  stages: DockerfileStage[]
}

/** Enough of the Dockerfile grammar for our files: line continuations, comments, global ARGs. */
export function readDockerfile(path: string): Dockerfile {
  const lines = read(path)
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
  const args: Record<string, string> = {}
  const stages: DockerfileStage[] = []
  for (const line of lines) {
    const [keyword = '', ...rest] = line.split(/\s+/)
    const argsText = rest.join(' ')
    if (keyword.toUpperCase() === 'FROM') {
      const [from = '', as, name] = rest
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0 && keyword.toUpperCase() === 'ARG') {
      const [key = '', value = ''] = argsText.split('=')
      args[key] = value
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args: argsText })
    }
  }
  return { args, stages }
}

export function resolveImage(dockerfile: Dockerfile, from: string): string {
  return from.replace(/\$\{?(\w+)\}?/g, (_, name: string) => dockerfile.args[name] ?? '')
}

/** `KEY=value` lines of .env.example, each with the comment lines just above it. */
export function readEnvExample(): Map<string, { value: string; comment: string }> {
  const entries = new Map<string, { value: string; comment: string }>()
  let comment: string[] = []
  for (const line of read('.env.example').split('\n')) {
    const trimmed = line.trim()
    if (trimmed.startsWith('#')) {
      const text = trimmed.replace(/^#+\s?/, '')
      // A commented-out assignment (`# KEY=value`) documents an optional variable.
      const assignment = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(text)
      if (assignment?.[1]) {
        entries.set(assignment[1], { value: assignment[2] ?? '', comment: comment.join(' ') })
        comment = []
      } else comment.push(text)
    } else if (trimmed === '') comment = []
    else {
      const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(trimmed)
      if (match?.[1]) entries.set(match[1], { value: match[2] ?? '', comment: comment.join(' ') })
      comment = []
    }
  }
  return entries
}

/** Variables a service reads: the keys of its config schema, the shared base's included. */
export function configVariables(service: ServiceName): string[] {
  const shapes: Record<ServiceName, object> = {
    indexer: indexerConfigSchema.shape,
    api: apiConfigSchema.in.shape,
    producer: producerConfigSchema.shape,
    notifier: notifierConfigSchema.shape,
  }
  return Object.keys(shapes[service]).sort()
}

/** `${NAME}`, `${NAME:-default}`, `${NAME:?error}` references in a compose file. */
export function interpolatedVariables(text: string): Set<string> {
  return new Set([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}/g)].map((m) => m[1]!))
}

export interface Tools {
  dockerCompose?: string
  hadolint?: string
}

let tools: Tools | undefined
/** Installs (once, cached) and locates docker compose and hadolint; see tools.sh. */
export function deployTools(): Tools {
  if (tools) return tools
  const out = execFileSync('bash', [join(root, 'test/deploy/tools.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  })
  const found = Object.fromEntries(out.split('\n').map((line) => line.split('=')))
  tools = {
    dockerCompose: existsSync(found['docker-compose'] ?? '') ? found['docker-compose'] : undefined,
    hadolint: existsSync(found.hadolint ?? '') ? found.hadolint : undefined,
  }
  return tools
}
