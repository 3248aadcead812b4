/**
 * `npm run serve`: the stack's production bundles on plain workerd (no `wrangler dev` proxy, which
 * adds milliseconds to every request), on the same ports and store as `npm start`. For benchmarks
 * and for trying the gate as it would be deployed. PORT changes the gate's port.
 */

import { banner } from './lib/stack-banner.ts'
import { gatePortFromEnv } from './lib/stack-paths.ts'
import { serveStack } from './lib/stack-serve.ts'

async function main(): Promise<void> {
  const stack = await serveStack({
    gatePort: gatePortFromEnv(),
    verbose: process.argv.includes('--verbose'),
    onProgress: (message) => console.log(`[serve] ${message}`),
  })
  console.log(banner(stack.urls, 'production bundles on workerd (npm run serve)'))
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      console.log(`\n[serve] ${signal}: stopping`)
      void stack.stop().then(() => process.exit(signal === 'SIGINT' ? 130 : 143))
    })
  }
}

main().catch((error: unknown) => {
  console.error(`[serve] ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
