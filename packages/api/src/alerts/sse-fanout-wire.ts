import type { Alert } from '@intellisite/detections-store'
import { type AlertEntry, createAlertEntry } from './alert-entry.js'
import type { Position } from './resume-token.js'
import type { CloseReason } from './sse-client.js'

/**
 * Messages between the API process and its fan-out processes (IPC channel, JSON: the advanced
 * serialization stalled on messages of a few hundred kB). One channel per process keeps them in order: every `publish` sent before a
 * `client` hand-off has reached the fan-out process before the socket does.
 */
export interface WireEntry {
  partition: number
  offset: number
  alert: Alert
  position: Position
}

export interface FanOutSettings {
  heartbeatMs: number
  maxQueueFrames: number
  maxQueueBytes: number
  writesPerSecond: number
  maxFlushDelayMs: number
  sweepChunk?: number
  logLevel: string
}

export type ToFanOut =
  | { type: 'init'; settings: FanOutSettings }
  | { type: 'publish'; entries: WireEntry[] }
  /** Comes with the socket. `held`: live entries the client held while catching up. */
  | {
      type: 'client'
      id: number
      user: string
      filterKey: string
      position: Position
      held: WireEntry[]
      /** `finalFrame` in base64. */
      ending?: { at: number; reason: CloseReason; finalFrame?: string }
    }
  | { type: 'close' }

export type FromFanOut =
  | { type: 'ready' }
  /** A handed-off stream ended (its user's connection slot is free again). */
  | { type: 'closed'; id: number }
  | { type: 'stats'; eventsSent: number; dropped: Partial<Record<CloseReason, number>>; sweeps: number[] }
  | { type: 'closed-all' }

export const toWire = (entry: AlertEntry): WireEntry => ({
  partition: entry.partition,
  offset: entry.offset,
  alert: entry.alert,
  position: entry.position,
})

export const fromWire = (entry: WireEntry): AlertEntry =>
  createAlertEntry(entry.partition, entry.offset, entry.alert, entry.position)
