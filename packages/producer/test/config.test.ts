import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'

describe('producer config', () => {
  it('has defaults that match the challenge producer (3/s, intellisite.detections, endless)', () => {
    const result = loadConfig({}, [])
    expect(result.ok && result.config).toMatchObject({
      DETECTIONS_TOPIC: 'intellisite.detections',
      PRODUCER_RATE: 3,
      PRODUCER_BURST: false,
      PRODUCER_CREATE_TOPIC: true,
      TOPIC_PARTITIONS: 3,
    })
    expect(result.ok && result.config.PRODUCER_COUNT).toBeUndefined()
  })

  it('lets flags override the environment', () => {
    const env = { PRODUCER_RATE: '10', KAFKA_BROKERS: 'a:9092, b:9092', PRODUCER_COUNT: '' }
    const result = loadConfig(env, [
      '--rate',
      '50',
      '--count',
      '1000',
      '--burst',
      '--no-create-topic',
      '--seed',
      's',
    ])
    expect(result.ok && result.config).toMatchObject({
      KAFKA_BROKERS: ['a:9092', 'b:9092'],
      PRODUCER_RATE: 50,
      PRODUCER_COUNT: 1000,
      PRODUCER_BURST: true,
      PRODUCER_CREATE_TOPIC: false,
      PRODUCER_SEED: 's',
    })
  })

  it('reports every bad variable by name', () => {
    const result = loadConfig({ PRODUCER_RATE: 'fast', PRODUCER_BURST: 'maybe', TOPIC_PARTITIONS: '0' }, [])
    expect(result.ok).toBe(false)
    const errors = !result.ok && 'errors' in result ? result.errors.join('\n') : ''
    expect(errors).toMatch(/PRODUCER_RATE/)
    expect(errors).toMatch(/PRODUCER_BURST/)
    expect(errors).toMatch(/TOPIC_PARTITIONS/)
  })

  it('accepts the `--` that pnpm passes through', () => {
    const result = loadConfig({}, ['--', '--rate', '7'])
    expect(result.ok && result.config.PRODUCER_RATE).toBe(7)
  })

  it('rejects unknown flags', () => {
    const result = loadConfig({}, ['--rtae', '5'])
    expect(result.ok).toBe(false)
  })
})
