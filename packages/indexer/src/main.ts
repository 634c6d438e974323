// Composition root: the only module that reads the environment. Everything else, from the store to
// graceful shutdown, is wired in indexer-process.ts.
import { runIndexer } from './indexer-process.js'

await runIndexer({ env: process.env })
