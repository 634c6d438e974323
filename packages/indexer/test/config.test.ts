import { describe, expect, it } from 'vitest'
import { ConfigError, DEFAULT_DETECTIONS_STORE_URL, loadConfig } from '../src/config.js'

describe('loadConfig', () => {
  it('has defaults that work on loopback', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      kafka: { brokers: ['127.0.0.1:29092'] },
      topics: {
        detections: 'intellisite.detections',
        alerts: 'intellisite.alerts',
        rules: 'intellisite.alert-rules',
        partitions: 3,
      },
      groupId: 'intellisite-indexer',
      suspiciousVehicle: 'SUV',
      http: { port: 9101 },
      maxMessageBytes: 65536,
    })
  })

  it('parses lists and numbers, and treats empty variables as unset', () => {
    const config = loadConfig({
      KAFKA_BROKERS: 'a:9092, b:9093',
      TOPIC_PARTITIONS: '6',
      SUSPICIOUS_VEHICLE: 'SUV, Pickup',
      INDEXER_PORT: '',
    })
    expect(config.kafka.brokers).toEqual(['a:9092', 'b:9093'])
    expect(config.topics.partitions).toBe(6)
    expect(config.suspiciousVehicle).toBe('SUV, Pickup')
    expect(config.http.port).toBe(9101)
  })

  it('takes the detections store from DETECTIONS_STORE_URL, else MONGO_URL, else local PostgreSQL', () => {
    expect(loadConfig({}).storeUrl).toBe(DEFAULT_DETECTIONS_STORE_URL)
    expect(DEFAULT_DETECTIONS_STORE_URL).toMatch(/^postgres:\/\//)
    expect(loadConfig({ MONGO_URL: 'mongodb://m:27017/x' }).storeUrl).toBe('mongodb://m:27017/x')
    expect(
      loadConfig({ MONGO_URL: 'mongodb://m:27017/x', DETECTIONS_STORE_URL: 'postgresql://p/db' }).storeUrl,
    ).toBe('postgresql://p/db')
    expect(() => loadConfig({ DETECTIONS_STORE_URL: 'redis://x' })).toThrow(/DETECTIONS_STORE_URL/)
  })

  it('says which variable chose the detections store, so the start can warn about MONGO_URL', () => {
    expect(loadConfig({}).storeSource).toBe('default')
    expect(loadConfig({ MONGO_URL: 'mongodb://m/x' }).storeSource).toBe('MONGO_URL')
    expect(loadConfig({ MONGO_URL: 'mongodb://m/x', DETECTIONS_STORE_URL: '' }).storeSource).toBe('MONGO_URL')
    expect(
      loadConfig({ MONGO_URL: 'mongodb://m/x', DETECTIONS_STORE_URL: 'postgres://p/db' }).storeSource,
    ).toBe('DETECTIONS_STORE_URL')
  })

  it('reports every bad variable at once', () => {
    let error: unknown
    try {
      loadConfig({
        KAFKA_BROKERS: 'no-port',
        MONGO_URL: 'http://x',
        TOPIC_PARTITIONS: '0',
        SUSPICIOUS_VEHICLE: ' , ',
        INDEXER_HEARTBEAT_INTERVAL_MS: '20000',
      })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    const issues = (error as ConfigError).issues.join('\n')
    for (const name of ['KAFKA_BROKERS', 'MONGO_URL', 'TOPIC_PARTITIONS', 'SUSPICIOUS_VEHICLE']) {
      expect(issues).toContain(name)
    }
  })
})
