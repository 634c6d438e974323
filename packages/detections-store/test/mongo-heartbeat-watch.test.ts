import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { watchHeartbeats } from '../src/mongo-heartbeat-watch.js'

const SERVER = '127.0.0.1:27017'

function watched() {
  const client = new EventEmitter()
  let time = 0
  const watch = watchHeartbeats(client, {
    connectTimeoutMS: 1_000,
    heartbeatFrequencyMS: 10_000,
    now: () => time,
  })
  return {
    client,
    watch,
    at: (ms: number) => {
      time = ms
    },
  }
}

describe('MongoDB heartbeat watch', () => {
  it('calls a polled heartbeat that outlives connect, hello and authentication a stopped monitor', () => {
    const { client, watch, at } = watched()
    client.emit('serverHeartbeatStarted', { connectionId: SERVER, awaited: false })
    at(4_000)
    expect(watch.stalled()).toBe(false)
    at(4_001)
    expect(watch.stalled()).toBe(true)
  })

  it('gives a streamed heartbeat its await time on top', () => {
    const { client, watch, at } = watched()
    client.emit('serverHeartbeatStarted', { connectionId: SERVER, awaited: true })
    at(11_000)
    expect(watch.stalled()).toBe(false)
    at(11_001)
    expect(watch.stalled()).toBe(true)
  })

  it('forgets a heartbeat once it has succeeded or failed, or its server has left', () => {
    const { client, watch, at } = watched()
    for (const end of ['serverHeartbeatSucceeded', 'serverHeartbeatFailed', 'serverClosed']) {
      client.emit('serverHeartbeatStarted', { connectionId: SERVER, awaited: false })
      client.emit(end, end === 'serverClosed' ? { address: SERVER } : { connectionId: SERVER })
    }
    at(60_000)
    expect(watch.stalled()).toBe(false)
  })

  it('times each heartbeat from its own start', () => {
    const { client, watch, at } = watched()
    client.emit('serverHeartbeatStarted', { connectionId: SERVER, awaited: false })
    client.emit('serverHeartbeatSucceeded', { connectionId: SERVER })
    at(30_000)
    client.emit('serverHeartbeatStarted', { connectionId: SERVER, awaited: false })
    at(34_000)
    expect(watch.stalled()).toBe(false)
    at(34_001)
    expect(watch.stalled()).toBe(true)
  })
})
