import { ERROR_CODES } from '@intellisite/common'
import { describe, expect, it } from 'vitest'
import { ERROR_STATUSES, errorStatus } from '../src/http/error-statuses.js'

describe('the status table', () => {
  it('gives every error code a status, or says that it never reaches HTTP', () => {
    expect(Object.keys(ERROR_STATUSES).sort()).toEqual(Object.keys(ERROR_CODES).sort())
    for (const [code, status] of Object.entries(ERROR_STATUSES)) {
      if (status === 'internal') continue
      expect(status >= 400 && status <= 599, `${code}: ${status}`).toBe(true)
    }
  })

  it('answers the store errors a request causes as client errors, and an escaped internal code as a 500', () => {
    expect(errorStatus('INVALID_CURSOR')).toBe(400)
    expect(errorStatus('INVALID_TIMESERIES_RANGE')).toBe(400)
    expect(errorStatus('TIMESERIES_WIDTH_DROPPED')).toBe(400)
    expect(errorStatus('USERNAME_TAKEN')).toBe(409)
    expect(errorStatus('TRANSACTION_FAILED')).toBe(500)
  })
})
