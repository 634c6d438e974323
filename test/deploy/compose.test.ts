// What cannot run here (no Docker engine) is checked statically: every compose file against the
// Compose Specification JSON schema, then by Docker Compose itself (`config`: load, interpolate,
// validate, as `up` would), then the project's own rules.
//
// compose-spec.json is the schema docker compose v2.40.3 embeds (compose-go v2.9.1,
// schema/compose-spec.json, Apache-2.0), vendored so the check needs no network.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  COMPOSE_CONFIG,
  checkHaproxyConfig,
  composeHaproxyOptions,
  renderHaproxyConfig,
} from '../../scripts/haproxy/haproxy.js'
import {
  COMPOSE_FILES,
  type ComposeFile,
  type ComposeService,
  configVariables,
  deployTools,
  interpolatedVariables,
  read,
  readCompose,
  readDockerfile,
  readEnvExample,
  root,
  type ServiceName,
} from './deploy-files.js'

// The schema names draft-07 by an https URL ajv does not register; its keywords are plain draft-07.
const { $schema: _draft, ...schema } = JSON.parse(read('test/deploy/compose-spec.json'))
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema)

const files = Object.fromEntries(COMPOSE_FILES.map((file) => [file, readCompose(file)])) as Record<
  string,
  ComposeFile
>
const indexerFile = files['docker-compose.indexer.yml']!
const kafkaFile = files['docker-compose.kafka.yml']!

/** A healthcheck either in the compose file or in the image's Dockerfile (HEALTHCHECK CMD). */
function hasHealthcheck(service: ComposeService): boolean {
  if (service.healthcheck) return !service.healthcheck.disable
  if (!service.build) return false
  const dockerfile = readDockerfile(service.build.dockerfile)
  const healthcheck = dockerfile.stages.at(-1)?.instructions.find((i) => i.keyword === 'HEALTHCHECK')
  return healthcheck !== undefined && !/^NONE\b/i.test(healthcheck.args)
}

function networksOf(service: ComposeService): string[] {
  return Array.isArray(service.networks) ? service.networks : Object.keys(service.networks ?? {})
}

describe.each(COMPOSE_FILES)('%s', (file) => {
  const compose = files[file]!

  it('is valid against the Compose Specification schema', () => {
    const valid = validate(compose)
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([])
    expect(valid).toBe(true)
  })

  it('joins the external network intellisite, every service on it, with a project name', () => {
    expect(compose.networks?.intellisite?.external).toBe(true)
    expect(compose.name).toMatch(/^intellisite/)
    expect(compose).not.toHaveProperty('version')
    for (const [name, service] of Object.entries(compose.services)) {
      expect(networksOf(service), name).toContain('intellisite')
    }
  })

  it('pins every image to an explicit tag (never latest) or builds it from docker/', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.build) {
        expect(service.build.dockerfile, name).toMatch(/^docker\/\w+\.Dockerfile$/)
        expect(() => read(service.build!.dockerfile)).not.toThrow()
      } else {
        expect(service.image, name).toMatch(/^[\w./-]+:[\w.-]+$/)
        expect(service.image, name).not.toMatch(/:latest$/)
      }
    }
  })

  it('keeps secrets out of the file: they come from .env, required or empty by default', () => {
    const text = read(file)
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        const text = String(value ?? '')
        if (/SECRET|PASSWORD|TOKEN|PRIVATE_KEY/.test(key)) {
          // Required (`:?`), or optional with an empty default (ADMIN_PASSWORD): never a value.
          expect(text, `${name}.${key}`).toMatch(/^\$\{[A-Z_]+(:\?[^}]+|:-)\}$/)
        }
        // Credentials inside URLs must be interpolated too.
        const credentials = /:\/\/(?:\$\{[^}]*\}|[^/:@$])+:((?:\$\{[^}]*\}|[^@$])+)@/.exec(text)
        if (credentials) expect(credentials[1], `${name}.${key}`).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/)
      }
    }
    expect(text).not.toMatch(/(PASSWORD|SECRET)\s*[:=]\s*["']?(?!\$\{)[\w-]{4,}/)
  })

  it('gates depends_on on health or completion, and only on services that report it', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (!service.depends_on) continue
      expect(Array.isArray(service.depends_on), `${name} uses the short depends_on form`).toBe(false)
      for (const [dependency, { condition }] of Object.entries(service.depends_on)) {
        const target = compose.services[dependency]
        expect(target, `${name} depends on unknown ${dependency}`).toBeDefined()
        if (condition === 'service_healthy')
          expect(hasHealthcheck(target!), `${dependency} healthcheck`).toBe(true)
        else if (condition === 'service_completed_successfully') expect(target!.restart).toBe('no')
        else throw new Error(`${name} -> ${dependency}: condition ${condition} waits for nothing`)
      }
    }
  })

  it('gives every long-running server a healthcheck', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.restart === 'no' || name === 'producer') continue // one-shot jobs and a pure client
      expect(hasHealthcheck(service), name).toBe(true)
    }
  })
})

describe('docker-compose.kafka.yml', () => {
  const broker = kafkaFile.services.broker!
  const env = broker.environment ?? {}

  it('is one KRaft node of apache/kafka 3.9.1 named broker on broker:9092, without ZooKeeper', () => {
    expect(Object.keys(kafkaFile.services)).toEqual(['broker'])
    expect(broker.image).toBe('apache/kafka:3.9.1')
    expect(broker.container_name).toBe('broker')
    expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller')
    expect(String(env.KAFKA_ADVERTISED_LISTENERS)).toMatch(/(^|,)PLAINTEXT:\/\/broker:9092(,|$)/)
    expect(JSON.stringify(kafkaFile)).not.toMatch(/zookeeper/i)
  })

  it('supports transactions on one node and keeps its data in a volume', () => {
    expect(env.KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR).toBe(1)
    expect(env.KAFKA_TRANSACTION_STATE_LOG_MIN_ISR).toBe(1)
    expect(env.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR).toBe(1)
    expect(broker.volumes).toContain(`kafka-data:${env.KAFKA_LOG_DIRS}`)
  })
})

describe('docker-compose.kafka-cluster.yml', () => {
  const cluster = files['docker-compose.kafka-cluster.yml']!
  const nodes = Object.entries(cluster.services)

  it('is three combined KRaft nodes of apache/kafka 3.9.1 in one quorum, each with its own volume', () => {
    expect(nodes.map(([name]) => name)).toEqual(['broker-1', 'broker-2', 'broker-3'])
    const ids = new Set<unknown>()
    for (const [name, node] of nodes) {
      const env = node.environment ?? {}
      expect(node.image, name).toBe('apache/kafka:3.9.1')
      expect(env.KAFKA_PROCESS_ROLES, name).toBe('broker,controller')
      expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS, name).toBe('1@broker-1:9093,2@broker-2:9093,3@broker-3:9093')
      expect(String(env.KAFKA_ADVERTISED_LISTENERS), name).toMatch(
        new RegExp(`(^|,)PLAINTEXT://${name}:9092(,|$)`),
      )
      expect(node.volumes, name).toContain(`kafka-${env.KAFKA_NODE_ID}-data:${env.KAFKA_LOG_DIRS}`)
      ids.add(env.KAFKA_NODE_ID)
    }
    expect(ids).toEqual(new Set([1, 2, 3]))
  })

  it('replicates every topic, internal ones included, three times and needs two in sync', () => {
    for (const [name, node] of nodes) {
      const env = node.environment ?? {}
      expect(env.KAFKA_DEFAULT_REPLICATION_FACTOR, name).toBe(3)
      expect(env.KAFKA_MIN_INSYNC_REPLICAS, name).toBe(2)
      expect(env.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, name).toBe(3)
      expect(env.KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR, name).toBe(3)
      expect(env.KAFKA_TRANSACTION_STATE_LOG_MIN_ISR, name).toBe(2)
    }
  })
})

describe('docker-compose.indexer.yml', () => {
  const { indexer, api, migrate } = indexerFile.services

  it('lets the indexer scale: no container_name, no published port', () => {
    expect(indexer).toBeDefined()
    expect(indexer!.container_name).toBeUndefined()
    expect(indexer!.ports).toBeUndefined()
  })

  it('runs the API image migrate command before the API starts', () => {
    expect(migrate!.image).toBe(api!.image)
    expect(migrate!.command).toEqual(['node', 'dist/main.js', 'migrate'])
    expect(api!.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } })
    // The API's entry point must still understand that command.
    expect(read('packages/api/src/main.ts')).toMatch(/argv\[2\] === 'migrate'/)
  })

  it('lets the API scale behind the proxy: no container_name nor host port on api, the proxy publishes API_PORT', () => {
    const { proxy } = indexerFile.services
    expect(api!.container_name).toBeUndefined()
    expect(api!.ports).toBeUndefined()
    expect(api!.expose).toEqual(['3000'])
    // The proxy overwrites X-Forwarded-For with the client's address: the login limit keys on it.
    expect(api!.environment!.TRUST_PROXY).toMatch(/^\$\{TRUST_PROXY:-true\}$/)
    expect(proxy!.image).toMatch(/^haproxy:2\.6[\w.-]*$/)
    expect(proxy!.ports).toHaveLength(1)
    expect(proxy!.ports![0]).toMatch(/^\$\{API_PORT:-3000\}:3000$/)
    expect(proxy!.volumes).toEqual(['./docker/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'])
    // HAProxy's soft stop, with time for the replicas to end their streams first.
    expect(proxy!.stop_signal).toBe('SIGUSR1')
    expect(proxy!.healthcheck!.test).toContain('http://127.0.0.1:3000/haproxy/healthz')
  })

  it("mounts the template's compose rendering, which HAProxy itself accepts", () => {
    const mounted = read('docker/haproxy/haproxy.cfg')
    expect(mounted, 'run: node --import tsx scripts/haproxy/render-compose.ts').toBe(
      renderHaproxyConfig(composeHaproxyOptions),
    )
    // Replicas by Docker's DNS; health on /readyz; SSE never buffered nor cut between heartbeats.
    expect(mounted).toMatch(/^\s*server-template api- 1-\d+ api:3000 check resolvers docker init-addr none/m)
    expect(mounted).toMatch(/^\s*nameserver \w+ 127\.0\.0\.11:53$/m)
    expect(mounted).toMatch(/^\s*option httpchk GET \/readyz$/m)
    expect(mounted).toMatch(/^\s*option http-no-delay$/m)
    expect(mounted).not.toMatch(
      /^\s*(option http-server-close|option httpclose|compression|filter compression)/m,
    )
    const seconds = (name: string) => {
      const [, value, unit] = new RegExp(`^\\s*timeout ${name} (\\d+)(ms|s|m|h)$`, 'm').exec(mounted) ?? []
      return Number(value) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms']
    }
    const heartbeat = 15 // SSE_HEARTBEAT_MS default, in seconds
    for (const name of ['client', 'server', 'tunnel']) expect(seconds(name), name).toBeGreaterThan(heartbeat)
    checkHaproxyConfig(COMPOSE_CONFIG)
  })

  it('persists MongoDB and PostgreSQL in named volumes', () => {
    expect(indexerFile.services.mongo!.volumes).toContain('mongo-data:/data/db')
    expect(indexerFile.services.postgres!.volumes).toContain('postgres-data:/var/lib/postgresql/data')
  })
})

describe('configuration', () => {
  const documented = readEnvExample()
  /** Variables a service reads whose code default is right inside its container. */
  const notPassed: Record<ServiceName, string[]> = {
    indexer: ['INDEXER_HOST'],
    // The image sets DASHBOARD_DIR to the page it was built with; compose has no other copy to point at.
    api: ['DASHBOARD_DIR'],
    producer: [],
    notifier: ['NOTIFIER_HOST'],
  }
  const composeService: Record<ServiceName, ComposeService> = {
    indexer: indexerFile.services.indexer!,
    api: indexerFile.services.api!,
    producer: files['docker-compose.producer.yml']!.services.producer!,
    notifier: indexerFile.services.notifier!,
  }

  it.each(['indexer', 'api', 'producer', 'notifier'] as const)(
    'every variable %s reads is in .env.example with a comment, and compose passes it',
    (service) => {
      const variables = configVariables(service)
      expect(variables.length).toBeGreaterThan(5)
      for (const variable of variables) {
        expect(documented.get(variable)?.comment, `${variable} in .env.example`).toMatch(/\w{3,}/)
        if (!notPassed[service].includes(variable)) {
          expect(composeService[service].environment, `${service} compose environment`).toHaveProperty(
            variable,
          )
        }
      }
    },
  )

  it('every variable the compose files interpolate is documented in .env.example', () => {
    for (const file of COMPOSE_FILES) {
      for (const variable of interpolatedVariables(read(file))) {
        expect(documented.get(variable)?.comment, `${file}: ${variable}`).toMatch(/\w{3,}/)
      }
    }
  })

  it('.env.example ships no secret values', () => {
    for (const secret of ['JWT_SECRET', 'MONGO_PASSWORD', 'POSTGRES_PASSWORD']) {
      expect(documented.get(secret)?.value).toBe('')
    }
  })
})

describe('docker compose config (Docker Compose itself, no engine needed)', () => {
  let compose: string
  let dir: string
  beforeAll(() => {
    const tools = deployTools()
    if (!tools.dockerCompose)
      throw new Error('docker compose could not be installed: see test/deploy/tools.sh')
    compose = tools.dockerCompose
    dir = mkdtempSync(join(tmpdir(), 'compose-'))
    return () => rmSync(dir, { recursive: true, force: true })
  }, 600_000)

  const run = (file: string, envFile: string) =>
    spawnSync(
      compose,
      [
        '--project-directory',
        root,
        '--env-file',
        envFile,
        '-f',
        join(root, file),
        'config',
        '--format',
        'json',
      ],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      },
    )

  it('refuses to start the services while .env.example secrets are empty, naming them', () => {
    const result = run('docker-compose.indexer.yml', join(root, '.env.example'))
    expect(result.status).not.toBe(0)
    expect(result.stderr).toMatch(/(MONGO_PASSWORD|POSTGRES_PASSWORD|JWT_SECRET)/)
  })

  it.each(COMPOSE_FILES)('accepts %s with the secrets set, and resolves the services as intended', (file) => {
    const envFile = join(dir, '.env')
    writeFileSync(
      envFile,
      `${read('.env.example')}\nJWT_SECRET=${'s'.repeat(40)}\nMONGO_PASSWORD=mongo-pass\nPOSTGRES_PASSWORD=pg-pass\n`,
    )
    const result = run(file, envFile)
    expect(result.status, result.stderr).toBe(0)
    const resolved = JSON.parse(result.stdout) as ComposeFile
    for (const [name, service] of Object.entries(resolved.services)) {
      expect(networksOf(service), name).toContain('intellisite')
    }
    if (file === 'docker-compose.indexer.yml') {
      const api = resolved.services.api!.environment!
      expect(api.MONGO_URL).toBe('mongodb://intellisite:mongo-pass@mongo:27017/intellisite?authSource=admin')
      expect(api.DATABASE_URL).toBe('postgres://intellisite:pg-pass@postgres:5432/intellisite')
      expect(api.KAFKA_BROKERS).toBe('broker:9092')
      expect(resolved.services.indexer!.environment!.MONGO_URL).toBe(api.MONGO_URL)
    }
  })

  it('scales the indexer and the API to 3 replicas', () => {
    const envFile = join(dir, '.env')
    writeFileSync(envFile, `JWT_SECRET=${'s'.repeat(40)}\nMONGO_PASSWORD=m\nPOSTGRES_PASSWORD=p\n`)
    const out = execFileSync(
      compose,
      [
        '--project-directory',
        root,
        '--env-file',
        envFile,
        '-f',
        join(root, 'docker-compose.indexer.yml'),
        'config',
        '--format',
        'json',
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', COMPOSE_SCALE: '' } },
    )
    // `up --scale` refuses a service with container_name or a fixed host port; neither survives config.
    const { indexer, api } = (JSON.parse(out) as ComposeFile).services
    for (const service of [indexer!, api!]) {
      expect(service.container_name).toBeUndefined()
      expect(service.ports ?? []).toEqual([])
    }
  })
})
