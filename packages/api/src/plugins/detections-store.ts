import { describeDetectionsStore, warnWhenMongoUrlChoseStore } from '@intellisite/common'
import { type DetectionsStore, openDetectionsStore } from '@intellisite/detections-store'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'

/** What the routes use of the store: its repository, and which backend serves it (for /readyz). */
export type AppDetectionsStore = Pick<DetectionsStore, 'repository' | 'backend'>

declare module 'fastify' {
  interface FastifyInstance {
    detectionsStore: AppDetectionsStore
  }
}

export interface DetectionsStorePluginOptions {
  config: Pick<Config, 'DETECTIONS_STORE_URL' | 'detectionsStoreSource'>
  /** A store the caller opened and closes after the app; without one the plugin opens and closes its own. */
  store?: AppDetectionsStore
}

export const detectionsStorePlugin = fp<DetectionsStorePluginOptions>(
  async (app, { config, store: given }) => {
    const store = given ?? (await openOwnStore(app, config))
    const { repository, backend } = store
    app.decorate('detectionsStore', store)
    app.readiness.detections = {
      backend,
      check: async () => {
        await repository.ping()
        return 'up'
      },
    }
  },
  { name: 'detections-store', dependencies: ['readiness'] },
)

/** The store DETECTIONS_STORE_URL names, closed when the app closes. */
async function openOwnStore(
  app: FastifyInstance,
  config: DetectionsStorePluginOptions['config'],
): Promise<DetectionsStore> {
  const storeChoice = { url: config.DETECTIONS_STORE_URL, source: config.detectionsStoreSource }
  warnWhenMongoUrlChoseStore(app.log, storeChoice)
  const store = openDetectionsStore(config.DETECTIONS_STORE_URL, {
    logger: app.log.child({ component: 'detections-store' }),
    appName: 'intellisite-api',
  })
  app.addHook('onClose', () => store.close())
  await store.repository.ensureIndexes()
  app.log.info(
    { store: { backend: store.backend, ...describeDetectionsStore(storeChoice) } },
    'detections store ready',
  )
  return store
}
