import { z } from 'zod'
import { LOCAL_DETECTIONS_STORE_URL } from './local-services.js'

/** `DETECTIONS_STORE_URL`: the URL scheme picks the backend. */
export const detectionsStoreUrlSchema = z.url({ protocol: /^(postgres(ql)?|mongodb(\+srv)?)$/ })

/** `MONGO_URL`: the store's older name, MongoDB only. */
export const mongoUrlSchema = z.url({ protocol: /^mongodb(\+srv)?$/ })

/** The variable that chose the detections store (`default`: none was set). */
export type DetectionsStoreSource = 'DETECTIONS_STORE_URL' | 'MONGO_URL' | 'default'

/**
 * DETECTIONS_STORE_URL names the detections store. MONGO_URL, its older name (compose still sets
 * it), counts only when DETECTIONS_STORE_URL is not set; the caller says so in a warning, since a
 * shell that exported the local services' MONGO_URL would otherwise move detections to MongoDB
 * without a word.
 */
export function chooseDetectionsStore(env: { DETECTIONS_STORE_URL?: string; MONGO_URL?: string }): {
  url: string
  source: DetectionsStoreSource
} {
  if (env.DETECTIONS_STORE_URL) return { url: env.DETECTIONS_STORE_URL, source: 'DETECTIONS_STORE_URL' }
  if (env.MONGO_URL) return { url: env.MONGO_URL, source: 'MONGO_URL' }
  return { url: LOCAL_DETECTIONS_STORE_URL, source: 'default' }
}

/** Log fields for a start banner: the store's URL without its password, and what chose it. */
export function describeDetectionsStore(store: { url: string; source: DetectionsStoreSource }): {
  url: string
  from: DetectionsStoreSource
} {
  return { url: redactUrlPassword(store.url), from: store.source }
}

/** One warning when MONGO_URL, not DETECTIONS_STORE_URL, chose the store. */
export function warnWhenMongoUrlChoseStore(
  logger: { warn(object: object, message: string): void },
  store: { url: string; source: DetectionsStoreSource },
): void {
  if (store.source !== 'MONGO_URL') return
  logger.warn(
    { store: redactUrlPassword(store.url) },
    'DETECTIONS_STORE_URL is not set: MONGO_URL chose the detections store (set DETECTIONS_STORE_URL to choose it)',
  )
}

/** A URL fit for a log line: its password (if any) masked. */
export function redactUrlPassword(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password === '') return url
    parsed.password = '***'
    return parsed.toString()
  } catch {
    return '[unparsable URL]'
  }
}
