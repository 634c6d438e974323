import { describe, expect, it } from 'vitest'
import { axisCount } from '../src/format.js'

describe('chart axis counts', () => {
  it('stay within five characters from units to hundreds of millions', () => {
    expect(axisCount(0)).toBe('0')
    expect(axisCount(999)).toBe('999')
    expect(axisCount(1_200)).toBe('1.2K')
    expect(axisCount(340_000)).toBe('340K')
    expect(axisCount(1_500_000)).toBe('1.5M')
    for (const value of [0, 7, 42, 999, 12_345, 123_456, 999_999, 12_345_678, 123_456_789]) {
      expect(axisCount(value).length, String(value)).toBeLessThanOrEqual(5)
    }
  })
})
