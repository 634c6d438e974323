const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumSignificantDigits: 3 })

/** A count short enough for a chart axis at any size: 999, 1.2K, 340K, 1.5M. */
export function axisCount(value: number): string {
  return compact.format(value)
}
