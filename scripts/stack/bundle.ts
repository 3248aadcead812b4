/** The production bundles that workerd and Miniflare run: what `wrangler deploy` would upload. */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { childEnv, PROJECT_ROOT, WRANGLER_CLI } from './paths.ts'
import { runProgram } from './process.ts'

/** `wrangler deploy --dry-run --outdir <outdir>`; resolves with the bundle's path. */
export async function bundleWorker(config: string, outdir: string): Promise<string> {
  const result = await runProgram(
    process.execPath,
    [WRANGLER_CLI, 'deploy', '--dry-run', '--outdir', outdir, '-c', config],
    { cwd: PROJECT_ROOT, env: childEnv({ NO_COLOR: '1' }) }
  )
  if (result.code !== 0) {
    throw new Error(
      `bundling ${config} failed (exit ${result.code}):\n${result.stdout}${result.stderr}`
    )
  }
  return join(outdir, 'index.js')
}

/**
 * Bundles each config into `<dir>/<name>/index.js` (the source map beside it), all at once: each
 * run is mostly wrangler's start-up. Resolves with the bundles by the same names.
 */
export async function bundleWorkers<Name extends string>(
  dir: string,
  configs: Record<Name, string>
): Promise<Record<Name, string>> {
  const entries = Object.entries(configs) as [Name, string][]
  const scripts = await Promise.all(
    entries.map(([name, config]) => {
      const outdir = join(dir, name)
      mkdirSync(outdir, { recursive: true })
      return bundleWorker(config, outdir)
    })
  )
  return Object.fromEntries(entries.map(([name], i) => [name, scripts[i]])) as Record<Name, string>
}
