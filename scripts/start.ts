/**
 * `npm start`: a working local demo. Generates local secrets on first run, seeds the demo users,
 * starts the reference authority (8788), the demo origin (8789) and the gate (PORT, default 8787)
 * under `wrangler dev`, and prints how to try it. Ctrl-C stops everything; so does any child dying.
 */
import { banner } from './lib/stack-banner.ts'
import { gatePortFromEnv } from './lib/stack-paths.ts'
import { startStack } from './lib/stack-start.ts'

async function main(): Promise<void> {
  const stack = await startStack({
    gatePort: gatePortFromEnv(),
    onProgress: (message) => console.log(`[start] ${message}`),
  })
  console.log(banner(stack.urls, 'wrangler dev (live reload)'))

  let shuttingDown = false
  const shutdown = async (code: number) => {
    if (shuttingDown) return
    shuttingDown = true
    await stack.stop()
    process.exit(code)
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.log(`\n[start] ${signal}: stopping`)
      void shutdown(signal === 'SIGINT' ? 130 : 143)
    })
  }
  const death = await stack.died
  console.error(`[start] ${death.name} exited (code ${death.code}); stopping the others`)
  await shutdown(death.code === 0 ? 1 : death.code)
}

main().catch((error: unknown) => {
  console.error(`[start] ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
