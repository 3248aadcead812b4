/**
 * `npm start`: a working local demo. Generates local secrets on first run, seeds the demo users,
 * starts the reference authority (8788), the demo origin (8789) and the gate (PORT, default 8787)
 * under `wrangler dev`, and prints how to try it. Ctrl-C stops everything; so does any child dying.
 */
import { runStack } from './stack/cli.ts'

await runStack('start', 'wrangler-dev')
