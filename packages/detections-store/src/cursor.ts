/** Opaque keyset cursor: base64url of `<detectedAt ms>.<id>`. */
export function encodeCursor(detectedAt: Date, id: string): string {
  return Buffer.from(`${detectedAt.getTime()}.${id}`, 'utf8').toString('base64url')
}

export function decodeCursor(cursor: string): { detectedAt: Date; id: string } {
  if (cursor.length === 0 || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new Error('not base64url')
  }
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const match = /^(\d{1,15})\.([A-Za-z0-9_-]{1,64})$/.exec(text)
  if (!match?.[1] || !match[2]) throw new Error('not a detections cursor')
  return { detectedAt: new Date(Number(match[1])), id: match[2] }
}
