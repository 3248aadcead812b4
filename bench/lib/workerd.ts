/**
 * Serves a bundled worker on workerd through Miniflare's API, reached through a socket bound
 * directly to the worker (no `wrangler dev` proxy, no Miniflare entry worker), as
 * scripts/lib/stack-serve.ts does. The bench uses it only for the reference authority, whose KV
 * store needs Miniflare's implementation; everything else runs on plain workerd
 * (workerd-config.ts says why).
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Log, Miniflare } from 'miniflare'
import { unstable_readConfig } from 'wrangler'
import { readDotenv } from '../../scripts/lib/stack-secrets.ts'

interface MiniflareModule {
  Miniflare: new (options: unknown) => Miniflare
  /** Converts the flat options of Miniflare's README to the constructor's current shape. */
  convertV4MiniflareOptions(options: unknown): unknown
  NoOpLog: new () => Log
}

let miniflareModule: Promise<MiniflareModule> | undefined

/** The Miniflare that this project's wrangler runs (same workerd as `wrangler deploy` targets). */
function loadMiniflare(): Promise<MiniflareModule> {
  miniflareModule ??= (async () => {
    const fromWrangler = createRequire(import.meta.resolve('wrangler'))
    const entry = fromWrangler.resolve('miniflare')
    return (await import(pathToFileURL(entry).href)) as MiniflareModule
  })()
  return miniflareModule
}

export interface WorkerPlan {
  /** wrangler.toml of the worker: bindings, compatibility date and flags. */
  config: string
  /** The bundle (bundleWorker's output). */
  script: string
  port: number
  /** Storage directory (Durable Objects, KV), `<persistTo>/v3` as wrangler dev lays it out. */
  persistTo: string
  /** Dotenv file of the worker's secrets. */
  envFile: string
  /** Vars, over the config's [vars] and the secrets. */
  bindings?: Record<string, string>
  /** Every line the worker logs (console.*), with its level. */
  onLog?: (level: string, message: string) => void
}

export interface ServedWorker {
  readonly url: string
  stop(): Promise<void>
}

export async function serveWorker(plan: WorkerPlan): Promise<ServedWorker> {
  const miniflare = await loadMiniflare()
  // Built from the config by hand: wrangler's helper would also read the .dev.vars beside it.
  const config = unstable_readConfig({ config: plan.config })
  const vars: Record<string, string> = {}
  for (const [k, v] of Object.entries(config.vars ?? {})) {
    vars[k] = typeof v === 'string' ? v : JSON.stringify(v)
  }
  const kvNamespaces: Record<string, string> = {}
  for (const kv of config.kv_namespaces ?? []) kvNamespaces[kv.binding] = kv.id ?? kv.binding
  const worker = {
    name: config.name,
    modules: [{ type: 'ESModule', path: plan.script }],
    modulesRoot: join(plan.script, '..'),
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    bindings: { ...vars, ...Object.fromEntries(readDotenv(plan.envFile)), ...plan.bindings },
    kvNamespaces,
    unsafeDirectSockets: [{ host: '127.0.0.1', port: plan.port }],
  }
  const onLog = plan.onLog
  const options = {
    host: '127.0.0.1',
    port: 0,
    resourcePersistencePath: join(plan.persistTo, 'v3'),
    log: new miniflare.NoOpLog(),
    logRequests: false,
    handleStructuredLogs: onLog
      ? (log: { level: string; message: string }) => onLog(log.level, log.message)
      : () => {},
    workers: [worker],
  }
  const mf = new miniflare.Miniflare(miniflare.convertV4MiniflareOptions(options))
  await mf.ready
  return { url: `http://127.0.0.1:${plan.port}`, stop: () => mf.dispose() }
}
