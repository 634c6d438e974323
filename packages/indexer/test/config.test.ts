import { LOCAL_DETECTIONS_STORE_URL } from '@intellisite/common'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'

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

  it('lets overrides replace whole settings after the environment is parsed', () => {
    const config = loadConfig(
      { INDEXER_GROUP_ID: 'from-env', TOPIC_PARTITIONS: '6' },
      { groupId: 'override' },
    )
    expect(config.groupId).toBe('override')
    expect(config.topics.partitions).toBe(6)
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
    expect(loadConfig({}).storeUrl).toBe(LOCAL_DETECTIONS_STORE_URL)
    expect(LOCAL_DETECTIONS_STORE_URL).toMatch(/^postgres:\/\//)
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

  it('keeps detections for ever by default, minute buckets 7 days and hour buckets 90', () => {
    expect(loadConfig({}).retention).toEqual({
      detectionsMs: null,
      minuteBucketsMs: 7 * 86_400_000,
      hourBucketsMs: 90 * 86_400_000,
    })
    expect(loadConfig({}).maintenanceIntervalMs).toBe(3_600_000)
  })

  it('reads retention windows in minutes, hours, days or weeks, or off', () => {
    const config = loadConfig({
      DETECTIONS_RETENTION: '30d',
      DETECTIONS_MINUTE_BUCKETS_RETENTION: '36h',
      DETECTIONS_HOUR_BUCKETS_RETENTION: 'OFF',
    })
    expect(config.retention).toEqual({
      detectionsMs: 30 * 86_400_000,
      minuteBucketsMs: 36 * 3_600_000,
      hourBucketsMs: null,
    })
    expect(loadConfig({ DETECTIONS_RETENTION: '2w' }).retention.detectionsMs).toBe(14 * 86_400_000)
    expect(loadConfig({ DETECTIONS_RETENTION: '90m' }).retention.detectionsMs).toBe(90 * 60_000)
  })

  it.each([
    ['30', /DETECTIONS_RETENTION: '30' is not a duration/],
    ['thirty days', /DETECTIONS_RETENTION: 'thirty days' is not a duration/],
    ['-1d', /DETECTIONS_RETENTION: '-1d' is not a duration/],
    ['59m', /DETECTIONS_RETENTION: '59m' is shorter than an hour/],
    ['0d', /DETECTIONS_RETENTION: '0d' is shorter than an hour/],
  ])('refuses DETECTIONS_RETENTION=%s at start-up, naming the variable', (value, message) => {
    expect(() => loadConfig({ DETECTIONS_RETENTION: value })).toThrow(message)
  })

  it('refuses minute buckets kept longer than hour buckets', () => {
    expect(() =>
      loadConfig({ DETECTIONS_MINUTE_BUCKETS_RETENTION: '30d', DETECTIONS_HOUR_BUCKETS_RETENTION: '7d' }),
    ).toThrow(/DETECTIONS_MINUTE_BUCKETS_RETENTION: must not exceed DETECTIONS_HOUR_BUCKETS_RETENTION/)
    expect(() => loadConfig({ DETECTIONS_MINUTE_BUCKETS_RETENTION: 'off' })).toThrow(
      /DETECTIONS_MINUTE_BUCKETS_RETENTION/,
    )
  })
})
