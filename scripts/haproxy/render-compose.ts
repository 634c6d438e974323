// Writes docker/haproxy/haproxy.cfg, the compose rendering of docker/haproxy/haproxy.cfg.template
// (a deployment test fails while the two differ):
//   node --import tsx scripts/haproxy/render-compose.ts
import { writeFileSync } from 'node:fs'
import { COMPOSE_CONFIG, composeHaproxyOptions, renderHaproxyConfig } from './haproxy.js'

writeFileSync(COMPOSE_CONFIG, renderHaproxyConfig(composeHaproxyOptions))
console.log(`wrote ${COMPOSE_CONFIG}`)
