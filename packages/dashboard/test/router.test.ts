import { describe, expect, it } from 'vitest'
import { viewFromHash } from '../src/router.js'

describe('views by fragment', () => {
  it('picks the named view, the first with none, and no view for the skip link', () => {
    expect(viewFromHash('#rules')).toBe('rules')
    expect(viewFromHash('#/webhooks')).toBe('webhooks')
    expect(viewFromHash('')).toBe('detections')
    expect(viewFromHash('#')).toBe('detections')
    expect(viewFromHash('#main')).toBeNull()
  })
})
