/**
 * Run by `npm run package:check` inside the fresh app: imports the package's entries (absolute
 * paths as arguments) under Node and prints, as JSON, every import as Node resolved it. Only
 * workerd has `cloudflare:workers`: a stub answers it here, recorded like any other import.
 */
import { registerHooks } from 'node:module'
import { pathToFileURL } from 'node:url'

export interface ImportEdge {
  /** URL of the importing module. */
  from: string
  /** The specifier as written in that module. */
  specifier: string
  /** What Node resolved it to. */
  url: string
}

const CLOUDFLARE_WORKERS_STUB =
  'data:text/javascript,export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env } }'

const edges: ImportEdge[] = []
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved =
      specifier === 'cloudflare:workers'
        ? { url: CLOUDFLARE_WORKERS_STUB, shortCircuit: true }
        : nextResolve(specifier, context)
    edges.push({ from: context.parentURL ?? '', specifier, url: resolved.url })
    return resolved
  },
})

for (const entry of process.argv.slice(2)) await import(pathToFileURL(entry).href)
process.stdout.write(JSON.stringify(edges))
