import pg from 'pg'
import { toDetectionDocument } from '../packages/detections-store/src/index.js'
import { createTestStore } from '../test/support/detections-stores.js'

const s = await createTestStore('postgres', 'prof')
const url = s.url()
const pool = new pg.Pool({ connectionString: url })
const MAKES = ['Toyota', 'MAZDA', 'smart', 'Ford', 'Chevrolet', 'BMW', 'Land Rover', 'Honda', 'Kia']
const CATS = ['SUV', 'Sedan', 'SUV, Pickup', 'Wagon, SUV', 'Pickup', 'Sedan, Wagon', 'Coupe', 'Hatchback']
let off = 0
const batch = () => {
  const now = Date.now()
  return Array.from({ length: 10000 }, (_, j) => {
    const i = off++
    return toDetectionDocument(
      {
        Year: 1990 + (i % 35),
        Make: MAKES[i % 9]!,
        Model: 'Model ' + (i % 97),
        Category: CATS[(i * 7 + 3) % 8]!,
      },
      { topic: 't', partition: 0, offset: i, timestamp: now + (j >> 4) },
      i % 3 === 0,
    )
  })
}
try {
  for (let k = 0; k < 4; k++) {
    const b = batch()
    const t = performance.now()
    await s.repository.insertBatch(b)
    console.log('full', (performance.now() - t).toFixed(0))
  }
  for (const table of ['detection_buckets', 'detection_stats', 'detection_category_tokens']) {
    await pool.query(`ALTER TABLE ${table} RENAME TO ${table}_x`)
    await pool.query(`CREATE TEMP TABLE IF NOT EXISTS dummy (x int)`)
  }
} catch (e) {
  console.log(String(e))
}
await pool.end()
await s.drop()
