/**
 * What `npm run package:check` asks of the tarball: the files it holds, and the modules its entries
 * load at run time. Each function answers a list of problems, empty when all is well.
 */
import type { ImportEdge } from './import-graph.ts'

export interface Manifest {
  exports: Record<string, string | { types: string; default: string }>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

/** Files besides dist/ that the tarball carries (npm adds package.json itself). */
const TOP_LEVEL = new Set(['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'])

/** The one entry allowed to load `cloudflare:workers`: the others must load in any runtime. */
const WORKERD_ENTRY = './cloudflare'

/** Each entry's JS and declaration file, by subpath ('.', './client' …). */
export function entryFiles(manifest: Manifest): Map<string, { types: string; default: string }> {
  const entries = new Map<string, { types: string; default: string }>()
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target !== 'string') entries.set(subpath, target)
  }
  return entries
}

/** Only dist/ and the top-level documents, every entry's files present, no tests or sources. */
export function checkPackedFiles(paths: readonly string[], manifest: Manifest): string[] {
  const problems: string[] = []
  const packed = new Set(paths)
  for (const path of paths) {
    const inDist = path.startsWith('dist/') && /\.(js|d\.ts)$/.test(path)
    if (!inDist && !TOP_LEVEL.has(path)) problems.push(`unexpected file in the tarball: ${path}`)
    if (/\.test\.|(^|\/)test\//.test(path)) problems.push(`a test in the tarball: ${path}`)
  }
  for (const path of TOP_LEVEL) {
    if (!packed.has(path)) problems.push(`missing from the tarball: ${path}`)
  }
  for (const [subpath, files] of entryFiles(manifest)) {
    for (const file of [files.types, files.default]) {
      if (!packed.has(file.replace(/^\.\//, ''))) {
        problems.push(`export ${subpath} names ${file}, not in the tarball`)
      }
    }
  }
  return problems
}

/**
 * From the imports Node resolved while loading every entry: relative imports name `.js` files,
 * packages come from dependencies or peerDependencies, only ./cloudflare reaches
 * `cloudflare:workers`, and every packed module with code in it is loaded by some entry (a module
 * of types alone compiles to an empty one, which nothing loads). `packageUrl` is the installed
 * package's directory as a file URL ending in '/'.
 */
export function checkImports(
  edges: readonly ImportEdge[],
  packageUrl: string,
  manifest: Manifest,
  packedModules: readonly { path: string; code: string }[]
): { problems: string[]; external: Map<string, Set<string>> } {
  const problems: string[] = []
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ])
  const importsOf = new Map<string, ImportEdge[]>()
  for (const edge of edges) {
    if (!importsOf.has(edge.from)) importsOf.set(edge.from, [])
    importsOf.get(edge.from)?.push(edge)
  }
  const loaded = new Set<string>()
  const external = new Map<string, Set<string>>()
  for (const [subpath, files] of entryFiles(manifest)) {
    const outside = new Set<string>()
    external.set(subpath, outside)
    const queue = [new URL(files.default, packageUrl).href]
    const seen = new Set(queue)
    for (let url = queue.pop(); url !== undefined; url = queue.pop()) {
      loaded.add(url)
      for (const edge of importsOf.get(url) ?? []) {
        if (edge.specifier.startsWith('.')) {
          if (!edge.specifier.endsWith('.js')) {
            problems.push(`${relative(url, packageUrl)} imports ${edge.specifier}: not a .js path`)
          }
          if (!seen.has(edge.url) && edge.url.startsWith(packageUrl)) {
            seen.add(edge.url)
            queue.push(edge.url)
          }
          continue
        }
        outside.add(edge.specifier)
        const name = packageName(edge.specifier)
        if (edge.specifier === 'cloudflare:workers') {
          if (subpath !== WORKERD_ENTRY) {
            problems.push(
              `entry ${subpath} loads cloudflare:workers (${relative(url, packageUrl)})`
            )
          }
        } else if (name === undefined || !declared.has(name)) {
          problems.push(
            `${relative(url, packageUrl)} imports ${edge.specifier}, not a dependency or peer`
          )
        }
      }
    }
  }
  for (const { path, code } of packedModules) {
    if (!loaded.has(new URL(path, packageUrl).href) && !isEmptyModule(code)) {
      problems.push(`${path} is packed but no entry loads it`)
    }
  }
  return { problems, external }
}

/** What tsc emits for a module of types alone: `export {};` and comments. */
function isEmptyModule(code: string): boolean {
  return code.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '').trim() === 'export {};'
}

/** 'hono/jwt' -> 'hono', '@noble/hashes/sha2.js' -> '@noble/hashes'; undefined for node: etc. */
function packageName(specifier: string): string | undefined {
  if (/^[a-z]+:/.test(specifier)) return undefined
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

function relative(url: string, packageUrl: string): string {
  return url.startsWith(packageUrl) ? url.slice(packageUrl.length) : url
}
