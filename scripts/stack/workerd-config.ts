/**
 * A `workerd serve` configuration (Cap'n Proto text) for bundled workers, read from their
 * wrangler.toml: vars, Durable Object bindings (SQLite), compatibility date and flags. Each worker
 * gets a socket of its own on 127.0.0.1 and may fetch 127.0.0.1 (the origin, the authority).
 *
 * Durable Objects are stored as `wrangler dev` stores them (Miniflare: a `localDisk` directory,
 * `<persistTo>/v3/do`, and the namespace key `<worker name>-<class>`, from which workerd derives
 * both the object ids and the subdirectory), so a gate keeps its security contexts whether it runs
 * under `npm start` or `npm run serve`.
 *
 * Why not Miniflare: it routes every subrequest of a worker through an interceptor worker of its
 * own, which cost about 0.55 ms of CPU per request on this machine (a pass-through worker: 0.34 ms
 * per request on plain workerd, 0.9 ms under Miniflare). Production has no such hop. KV needs
 * Miniflare's implementation, though: workers with KV bindings are refused here.
 */
import { relative } from 'node:path'
import { unstable_readConfig } from 'wrangler'

export interface WorkerdService {
  /** Service name, unique in the process. */
  service: string
  /** The worker's wrangler.toml. */
  config: string
  /** Bundle (bundleWorkers' output). */
  script: string
  port: number
  /** Text bindings over the config's [vars] (secrets included). */
  vars: Record<string, string>
  /**
   * Directory of its Durable Objects' SQLite files (required when it has any). workerd fsyncs
   * every commit; on tmpfs that costs nothing. (workerd's inMemory storage has no SQL API.)
   */
  durableObjectsDir?: string
}

/** Cap'n Proto text literal. */
function text(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`
}

interface WorkerShape {
  name: string
  vars: Record<string, string>
  compatibilityDate: string
  compatibilityFlags: string[]
  durableObjects: { binding: string; className: string }[]
  sqliteClasses: Set<string>
}

function readShape(config: string): WorkerShape {
  const c = unstable_readConfig({ config })
  const vars: Record<string, string> = {}
  for (const [k, v] of Object.entries(c.vars ?? {})) {
    vars[k] = typeof v === 'string' ? v : JSON.stringify(v)
  }
  if ((c.kv_namespaces ?? []).length > 0) {
    throw new Error(`${config}: KV bindings need Miniflare (startMiniflare), not plain workerd`)
  }
  return {
    name: c.name ?? 'worker',
    vars,
    compatibilityDate: c.compatibility_date ?? '2026-10-01',
    // nodejs_compat is the default from 2026-08-04 and workerd warns about it.
    compatibilityFlags: (c.compatibility_flags ?? []).filter((f: string) => f !== 'nodejs_compat'),
    durableObjects: (c.durable_objects?.bindings ?? []).map(
      (b: { name: string; class_name: string }) => ({
        binding: b.name,
        className: b.class_name,
      })
    ),
    sqliteClasses: new Set(
      (c.migrations ?? []).flatMap(
        (m: { new_sqlite_classes?: string[] }) => m.new_sqlite_classes ?? []
      )
    ),
  }
}

/**
 * V8's flags for every workerd process started here. `--max-semi-space-size=8` (MiB): V8 grows
 * its young generation up to 16 MiB a semi-space under load and keeps it, and workerd never runs
 * V8's idle-time GC, so what a busy spell grew stays resident; 8 MiB keeps a gate's heap near its
 * live size (docs/performance.md, "Memory").
 */
export const DEFAULT_V8_FLAGS: readonly string[] = ['--max-semi-space-size=8']

/**
 * The gate's [vars] on plain workerd (a worker with `SecurityContext` objects), under the stack's own: workerd keeps the native memory of an
 * object it evicts (its allocator's high-water mark), so a quiet security context leaves memory
 * 2 s after its last request instead of workerd's 10 s (docs/performance.md, "Memory").
 */
export const SELF_HOSTED_GATE_VARS: Readonly<Record<string, string>> = {
  CONTEXT_RELEASE_AFTER: '2',
}

export interface WorkerdOptions {
  /** V8's own flags, for the whole process (workerd's `v8Flags`); default DEFAULT_V8_FLAGS. */
  v8Flags?: readonly string[]
}

/** The configuration text; `configDir` is where it will be written (embeds are relative). */
export function workerdConfig(
  workers: WorkerdService[],
  configDir: string,
  options: WorkerdOptions = {}
): string {
  const services: string[] = []
  const sockets: string[] = []
  for (const w of workers) {
    const shape = readShape(w.config)
    const selfHosted = shape.durableObjects.some((d) => d.className === 'SecurityContext')
    const vars = { ...shape.vars, ...(selfHosted ? SELF_HOSTED_GATE_VARS : {}), ...w.vars }
    const bindings = [
      ...Object.entries(vars).map(
        ([name, value]) => `(name = ${text(name)}, text = ${text(value)})`
      ),
      ...shape.durableObjects.map(
        (d) => `(name = ${text(d.binding)}, durableObjectNamespace = ${text(d.className)})`
      ),
    ]
    const classes = [...new Set(shape.durableObjects.map((d) => d.className))]
    const namespaces = classes.map(
      (className) =>
        `(className = ${text(className)}, uniqueKey = ${text(`${shape.name}-${className}`)}, enableSql = ${shape.sqliteClasses.has(className)})`
    )
    let storage: string | undefined
    if (classes.length > 0) {
      if (!w.durableObjectsDir) throw new Error(`${w.service}: Durable Objects need a directory`)
      const disk = `${w.service}-storage`
      services.push(
        `(name = ${text(disk)}, disk = (path = ${text(w.durableObjectsDir)}, writable = true))`
      )
      storage = `localDisk = ${text(disk)}`
    }
    const fields = [
      `modules = [(name = "index.js", esModule = embed ${text(relative(configDir, w.script))})]`,
      `compatibilityDate = ${text(shape.compatibilityDate)}`,
      `compatibilityFlags = [${shape.compatibilityFlags.map(text).join(', ')}]`,
      `bindings = [${bindings.join(', ')}]`,
      ...(namespaces.length > 0 ? [`durableObjectNamespaces = [${namespaces.join(', ')}]`] : []),
      ...(storage ? [`durableObjectStorage = (${storage})`] : []),
      'globalOutbound = "loopback"',
    ]
    services.push(`(name = ${text(w.service)}, worker = (${fields.join(', ')}))`)
    sockets.push(
      `(name = ${text(w.service)}, address = ${text(`127.0.0.1:${w.port}`)}, http = (), service = ${text(w.service)})`
    )
  }
  services.push('(name = "loopback", network = (allow = ["local"]))')
  return [
    'using Workerd = import "/workerd/workerd.capnp";',
    'const config :Workerd.Config = (',
    `  services = [\n    ${services.join(',\n    ')}\n  ],`,
    `  sockets = [\n    ${sockets.join(',\n    ')}\n  ],`,
    '  logging = (structuredLogging = true),',
    `  v8Flags = [${(options.v8Flags ?? DEFAULT_V8_FLAGS).map(text).join(', ')}],`,
    ');',
    '',
  ].join('\n')
}
