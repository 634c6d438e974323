import { describe, expect, it } from 'vitest'
import {
  type Delivery,
  lastAnswer,
  type Webhook,
  webhookBodyFromForm,
  webhookState,
} from '../src/webhook-format.js'

const webhook: Webhook = {
  id: 'a8d5c0f4-1c1e-4a55-9d43-3f2b8f1d9b10',
  url: 'https://hooks.example.com/x',
  description: '',
  rules: null,
  enabled: true,
  disabledReason: null,
  disabledAt: null,
  consecutiveFailures: 0,
  failingSince: null,
  previousSecretExpiresAt: null,
}

const delivery: Delivery = {
  id: 'b7e4a3c2-0d6f-4e2b-8a19-5c4d3e2f1a0b',
  alertId: 'ping_1',
  kind: 'ping',
  state: 'pending',
  attempts: 0,
  lastStatus: null,
  lastLatencyMs: null,
  lastError: null,
  lastAttemptAt: null,
  nextAttemptAt: '2026-12-05T10:00:00.000Z',
  createdAt: '2026-12-05T10:00:00.000Z',
  deliveredAt: null,
}

describe('webhook form → request body', () => {
  it('trims, and leaves an empty description out', () => {
    expect(webhookBodyFromForm({ url: ' https://h.example/x ', description: '  ' })).toEqual({
      ok: true,
      body: { url: 'https://h.example/x' },
    })
    expect(webhookBodyFromForm({ url: 'https://h.example/x', description: ' ops ' })).toEqual({
      ok: true,
      body: { url: 'https://h.example/x', description: 'ops' },
    })
    expect(webhookBodyFromForm({ url: ' ', description: '' }).ok).toBe(false)
  })
})

describe('webhook and delivery wording', () => {
  it('says why an endpoint is off, or how it is failing', () => {
    expect(webhookState(webhook)).toEqual({ label: 'Enabled', tone: 'ok' })
    expect(webhookState({ ...webhook, consecutiveFailures: 3 })).toEqual({
      label: 'Enabled, 3 failed attempts in a row',
      tone: 'warn',
    })
    expect(
      webhookState({ ...webhook, enabled: false, disabledReason: 'the endpoint answered 410 Gone' }),
    ).toEqual({
      label: 'Disabled: the endpoint answered 410 Gone',
      tone: 'off',
    })
  })

  it("gives the last attempt's answer", () => {
    expect(lastAnswer(delivery)).toBe('not tried yet')
    expect(lastAnswer({ ...delivery, attempts: 1, lastStatus: 200, lastLatencyMs: 12 })).toBe(
      'HTTP 200 in 12 ms',
    )
    expect(lastAnswer({ ...delivery, attempts: 2, lastError: 'connect ECONNREFUSED' })).toBe(
      'no response: connect ECONNREFUSED',
    )
    expect(
      lastAnswer({ ...delivery, attempts: 1, lastStatus: 500, lastLatencyMs: 3, lastError: 'HTTP 500' }),
    ).toBe('HTTP 500 in 3 ms: HTTP 500')
  })
})
