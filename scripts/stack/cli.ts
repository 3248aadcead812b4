/**
 * What `npm start` and `npm run serve` share: start the stack, print how to try it, and stop
 * everything on Ctrl-C (SIGINT), SIGTERM, or when any worker dies.
 */
import { banner } from './banner.ts'
import { gatePortFromEnv } from './paths.ts'
import { type StackBackend, startStack } from './stack.ts'

const MODES: Record<StackBackend, string> = {
  'wrangler-dev': 'wrangler dev (live reload)',
  workerd: 'production bundles on plain workerd (npm run serve)',
}

export async function runStack(
  tag: string,
  backend: StackBackend,
  options: { quiet?: boolean } = {}
): Promise<void> {
  try {
    const stack = await startStack({
      backend,
      gatePort: gatePortFromEnv(),
      quiet: options.quiet,
      onProgress: (message) => console.log(`[${tag}] ${message}`),
    })
    console.log(banner(stack.urls, MODES[backend]))
    let shuttingDown = false
    const shutdown = async (code: number) => {
      if (shuttingDown) return
      shuttingDown = true
      await stack.stop()
      process.exit(code)
    }
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        console.log(`\n[${tag}] ${signal}: stopping`)
        void shutdown(signal === 'SIGINT' ? 130 : 143)
      })
    }
    const death = await stack.died
    console.error(`[${tag}] ${death.name} exited (code ${death.code}); stopping the others`)
    await shutdown(death.code === 0 ? 1 : death.code)
  } catch (error) {
    console.error(`[${tag}] ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
}
