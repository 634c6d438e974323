// Composition root: the only module that reads the environment. Everything else, from the store to
// graceful shutdown, is wired in indexer-process.ts, which tests also run with fault hooks.
import { runIndexer } from './indexer-process.js'

await runIndexer({ env: process.env })
