/**
 * `npm run serve`: the stack's production bundles (what `wrangler deploy` would upload) as they
 * run when deployed: the gate and the demo origin on plain workerd, without the `wrangler dev`
 * proxy or Miniflare's interceptor, each on its own socket; the reference authority on Miniflare,
 * because its KV store needs it. Same ports, secrets and store as `npm start` (the gate keeps its
 * Durable Objects across both). No live reload. PORT changes the gate's port; --verbose prints
 * the workers' logs (the gate's decision log, one line per request).
 */
import { runStack } from './stack/cli.ts'

await runStack('serve', 'workerd', { quiet: !process.argv.includes('--verbose') })
