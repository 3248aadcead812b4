/**
 * `npm run package:check`: digest-gate as its users get it. Builds and packs the package, checks
 * what the tarball holds, then installs it into a fresh app outside the repository (the fixtures
 * in test/package/) and there:
 * - loads every entry under Node, recording each import (only ./cloudflare reaches
 *   `cloudflare:workers`; every package imported is a dependency or peer);
 * - type-checks and runs the simple form under Node (node/: login, wrong password, challenge);
 * - generates the edge form's types, type-checks it and bundles it with
 *   `wrangler deploy --dry-run` (edge/: the Durable Object classes exported and bound).
 * Stops at the first failure with the command's output; the app is then left for a look.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { PROJECT_ROOT } from '../stack/paths.ts'
import { runProgram } from '../stack/process.ts'
import { checkImports, checkPackedFiles, entryFiles, type Manifest } from './contents.ts'
import type { ImportEdge } from './import-graph.ts'

const FIXTURES = join(PROJECT_ROOT, 'test', 'package')
const started = Date.now()
const work = mkdtempSync(join(tmpdir(), 'digest-gate-package-'))
const app = join(work, 'app')

/** The children run on this Node (wrangler needs >= 22), see no `npm run` variables, send no metrics. */
const childEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_'))
  ),
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
  WRANGLER_SEND_METRICS: 'false',
}

function fail(message: string): never {
  console.error(`\npackage:check failed: ${message}`)
  console.error(`(work directory kept: ${work})`)
  process.exit(1)
}

/** Runs one command to completion; its output is printed only when it fails. */
async function run(name: string, command: string, args: string[], cwd: string): Promise<string> {
  const t = Date.now()
  const result = await runProgram(command, args, { cwd, env: childEnv, timeoutMs: 180_000 })
  if (result.code !== 0) {
    fail(
      `${name} (exit ${result.code})\n$ ${[command, ...args].join(' ')}  # in ${cwd}\n` +
        `${result.stdout}${result.stderr}`
    )
  }
  console.log(`ok - ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`)
  return result.stdout
}

function expectNone(what: string, problems: string[]): void {
  if (problems.length > 0) fail(`${what}:\n  ${problems.join('\n  ')}`)
  console.log(`ok - ${what}`)
}

const bin = (name: string) => join(app, 'node_modules', '.bin', name)

// The tarball.
await run(
  'build',
  process.execPath,
  [join(PROJECT_ROOT, 'scripts', 'package', 'build.ts')],
  PROJECT_ROOT
)
const packOut = await run(
  'npm pack',
  'npm',
  ['pack', '--ignore-scripts', '--json', '--pack-destination', work],
  PROJECT_ROOT
)
const [pack] = JSON.parse(packOut) as {
  filename: string
  size: number
  unpackedSize: number
  files: { path: string }[]
}[]
if (!pack) fail(`npm pack printed no tarball:\n${packOut}`)
const manifest = JSON.parse(
  readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')
) as Manifest & {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}
const paths = pack.files.map((f) => f.path)
expectNone('tarball contents', checkPackedFiles(paths, manifest))
console.log(
  `     ${paths.length} files, ${(pack.size / 1024).toFixed(0)} KiB packed, ` +
    `${(pack.unpackedSize / 1024).toFixed(0)} KiB unpacked`
)

// The fresh app: the fixtures, and package.template.json with `<tarball>` and every `<repository>`
// filled in: the versions the repository itself uses, which the npm cache already holds.
cpSync(FIXTURES, app, { recursive: true })
rmSync(join(app, 'package.template.json'))
const template = readFileSync(join(FIXTURES, 'package.template.json'), 'utf8')
const versions: Record<string, string> = { ...manifest.dependencies, ...manifest.devDependencies }
const appManifest = JSON.parse(template, (key, value) => {
  if (value === '<tarball>') return `file:${join(work, pack.filename)}`
  if (value !== '<repository>') return value
  const version = versions[key]
  if (version === undefined)
    fail(`package.template.json: ${key} is not a dependency of the repository`)
  return version
})
writeFileSync(join(app, 'package.json'), `${JSON.stringify(appManifest, null, 2)}\n`)
await run('npm install', 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], app)

// What each entry loads at run time.
const installed = join(app, 'node_modules', 'digest-gate')
const entries = [...entryFiles(manifest).values()].map((files) => join(installed, files.default))
const graph = await run(
  'load every entry under Node',
  process.execPath,
  [join(PROJECT_ROOT, 'scripts', 'package', 'import-graph.ts'), ...entries],
  app
)
const imports = checkImports(
  JSON.parse(graph) as ImportEdge[],
  `${pathToFileURL(installed).href}/`,
  manifest,
  paths
    .filter((path) => path.endsWith('.js'))
    .map((path) => ({ path, code: readFileSync(join(installed, path), 'utf8') }))
)
expectNone('runtime imports', imports.problems)
for (const [subpath, outside] of imports.external) {
  console.log(
    `     ${subpath}: ${[...outside].sort().join(', ') || '(nothing outside the package)'}`
  )
}

// The simple form under Node.
await run('node: tsc (strict, nodenext)', bin('tsc'), ['-p', 'node/tsconfig.json'], app)
console.log(
  (await run('node: run', process.execPath, ['node/out/main.js'], app))
    .trimEnd()
    .replace(/^/gm, '     ')
)

// The edge form.
const edge = join(app, 'edge')
await run(
  'edge: wrangler types',
  bin('wrangler'),
  ['types', '--env-file', '.dev.vars.example'],
  edge
)
await run('edge: tsc (strict, bundler)', bin('tsc'), ['-p', 'tsconfig.json'], edge)
const bundle = join(work, 'edge-bundle')
await run(
  'edge: wrangler deploy --dry-run',
  bin('wrangler'),
  ['deploy', '--dry-run', '--outdir', bundle],
  edge
)
const worker = readFileSync(join(bundle, 'index.js'), 'utf8')
const exported =
  /export\s*\{([^}]*)\}\s*;?\s*(\/\/# sourceMappingURL=\S+\s*)?$/.exec(worker)?.[1] ?? ''
const missing = ['Brake', 'SecurityContext', 'UserContexts', 'default'].filter(
  (name) => !new RegExp(`\\b${name}\\b`).test(exported)
)
expectNone(
  'edge: the bundle exports the Durable Object classes',
  missing.map((name) => `${name} is not exported`)
)

rmSync(work, { recursive: true, force: true })
console.log(`package:check passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
