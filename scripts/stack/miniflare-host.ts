/**
 * `node scripts/stack/miniflare-host.ts '<MiniflarePlan as JSON>'`: serves one bundled worker on
 * Miniflare until SIGTERM or SIGINT, for workers with KV bindings (plain workerd has no KV of its
 * own, and the users CLI writes Miniflare's store). Started by launcher.ts's startMiniflare.
 *
 * The worker is reached through a socket bound directly to it (no Miniflare entry worker); its
 * storage is `<persistTo>/v3`, as `wrangler dev` and `wrangler kv --local` lay it out. Its logs
 * go to stdout as text, one line each.
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Log, Miniflare } from 'miniflare'
import { unstable_readConfig } from 'wrangler'
import type { MiniflarePlan } from './launcher.ts'
import { readDotenv } from './secrets.ts'

interface MiniflareModule {
  Miniflare: new (options: unknown) => Miniflare
  /** Converts the flat options of Miniflare's README to the constructor's current shape. */
  convertV4MiniflareOptions(options: unknown): unknown
  NoOpLog: new () => Log
}

/** The Miniflare that this project's wrangler runs (same workerd, same storage format). */
async function loadMiniflare(): Promise<MiniflareModule> {
  const fromWrangler = createRequire(import.meta.resolve('wrangler'))
  const entry = fromWrangler.resolve('miniflare')
  return (await import(pathToFileURL(entry).href)) as MiniflareModule
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? '') as MiniflarePlan
  const miniflare = await loadMiniflare()
  // Built from the config by hand: wrangler's helper would also read the .dev.vars beside it.
  const config = unstable_readConfig({ config: plan.config })
  const vars: Record<string, string> = {}
  for (const [k, v] of Object.entries(config.vars ?? {})) {
    vars[k] = typeof v === 'string' ? v : JSON.stringify(v)
  }
  const secrets = plan.envFile ? Object.fromEntries(readDotenv(plan.envFile)) : {}
  const kvNamespaces: Record<string, string> = {}
  for (const kv of config.kv_namespaces ?? []) kvNamespaces[kv.binding] = kv.id ?? kv.binding
  const worker = {
    name: config.name,
    modules: [{ type: 'ESModule', path: plan.script }],
    modulesRoot: join(plan.script, '..'),
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    bindings: { ...vars, ...secrets, ...plan.vars },
    kvNamespaces,
    unsafeDirectSockets: [{ host: '127.0.0.1', port: plan.port }],
  }
  const mf = new miniflare.Miniflare(
    miniflare.convertV4MiniflareOptions({
      // Miniflare's own entry socket is not used: any free port.
      host: '127.0.0.1',
      port: 0,
      ...(plan.persistTo ? { resourcePersistencePath: join(plan.persistTo, 'v3') } : {}),
      log: new miniflare.NoOpLog(),
      logRequests: false,
      handleStructuredLogs: (log: { level: string; message: string }) => {
        const routine = log.level !== 'warn' && log.level !== 'error'
        process.stdout.write(`${routine ? '' : `${log.level}: `}${log.message}\n`)
      },
      workers: [worker],
    })
  )
  await mf.ready
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      void mf.dispose().finally(() => process.exit(0))
    })
  }
}

main().catch((error: unknown) => {
  console.error(`miniflare-host: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
