// Ingest benchmark entry point. The benchmark lives in the indexer package so that it resolves
// the indexer's own dependencies; see packages/indexer/bench/ingest.ts.
//
//   node --conditions=development --import tsx bench/ingest.ts --count 100000
import '../packages/indexer/bench/ingest.js'
