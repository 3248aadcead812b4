/**
 * User administration of the reference authority: `npm run users -- <command> [options]`.
 * Works on the local store of `npm start` by default, on the deployed namespace with --remote.
 * Passwords are read from a no-echo prompt or stdin, never from the command line. docs/users.md.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  DEFAULT_REALM,
  decodeUserRecord,
  groupProblem,
  HASH_NAMES,
  hashesForPassword,
  MAX_GROUPS,
  nameProblem,
  parseUserKey,
  recordEntries,
  recordKeys,
  USER_PREFIX,
  type UserRecord,
  userKey,
} from '../authority/src/store.ts'
import { mintGateToken } from '../src/authority-protocol/token.ts'
import { readDotenv } from './stack/secrets.ts'
import { seedDemo } from './users/demo.ts'
import { CliError } from './users/errors.ts'
import { parseHtdigest } from './users/htdigest.ts'
import {
  type KvTarget,
  kvDeleteMany,
  kvGet,
  kvGetMany,
  kvList,
  kvPutMany,
  WranglerError,
} from './users/kv.ts'
import { readNewPassword } from './users/password.ts'
import { revokeAtGate } from './users/revoke.ts'
import {
  chooseTokenSecret,
  DEFAULT_TOKEN_LIFETIME,
  describeToken,
  parseDuration,
} from './users/token.ts'

const ROOT = resolve(import.meta.dirname, '..')

const USAGE = `Usage: npm run users -- <command> [options]

Commands
  add <name> [--group g]...      create a user (password from a prompt, or stdin's first line)
  passwd <name>                  set a new password (all hash functions)
  remove <name>                  delete a user and its userhash indexes
  disable <name> | enable <name> refuse / allow the user's logins
  list [--json]                  users of --realm (all realms when not given)
  import-htdigest <file> [--group g]... [--replace]
                                 import Apache htdigest lines user:realm:md5 (MD5 only)
  export [--htdigest]            print every record (hashes included) as JSON: an admin backup
  token <serverId> [--realm r]... [--expires 90d]
                                 mint the gate's AUTHORITY_TOKEN: its serverId, the realms it may
                                 have verified, an expiry (default ${DEFAULT_TOKEN_LIFETIME}). Signed with
                                 AUTHORITY_SECRET from the environment (required with --remote)
                                 or else the local authority/.dev.vars
  seed-demo [--reset]            create the demo users alice, bob, "Jäsøn Doe" if missing

Options
  --realm <r>          realm (default "${DEFAULT_REALM}"); repeatable with token
  --expires <n><unit>  token lifetime, unit s m h d w y (y = 365 d), e.g. 90d, 12h
  --remote             the deployed USERS namespace instead of the local store; with token,
                       the deployed authority (AUTHORITY_SECRET must be in the environment)
  --persist-to <dir>   local store directory (default .wrangler/state, as npm start)
  --revoke-at <url>    after passwd/disable/remove, revoke the user's contexts at a gate:
                       POST <url>/users/<realm>/<name>/revoke with GATE_ADMIN_TOKEN, e.g.
                       --revoke-at http://127.0.0.1:8787/.digest-gate/admin
`

const OPTIONS = {
  realm: { type: 'string', multiple: true },
  expires: { type: 'string' },
  group: { type: 'string', multiple: true },
  remote: { type: 'boolean' },
  'persist-to': { type: 'string' },
  'revoke-at': { type: 'string' },
  json: { type: 'boolean' },
  htdigest: { type: 'boolean' },
  replace: { type: 'boolean' },
  reset: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

type Options = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values']

interface Context {
  options: Options
  target: KvTarget
  /** The first --realm, or the default: the realm of every command but token. */
  realm: string
  /** Every --realm given (deduplicated), or the default. */
  realms: string[]
  out: (line: string) => void
}

function say(line: string): void {
  process.stderr.write(`${line}\n`)
}

function checkName(kind: 'name' | 'realm', value: string): string {
  const problem = nameProblem(kind, value)
  if (problem !== undefined) throw new CliError(`${problem}: ${JSON.stringify(value)}`)
  return value
}

function checkGroups(groups: readonly string[] | undefined): string[] {
  const list = [...new Set(groups ?? [])]
  for (const group of list) {
    const problem = groupProblem(group)
    if (problem !== undefined) throw new CliError(problem)
  }
  if (list.length > MAX_GROUPS) throw new CliError(`at most ${MAX_GROUPS} groups per user`)
  return list
}

function oneArgument(args: string[], what: string, command: string): string {
  if (args.length !== 1) throw new CliError(`${command} takes one ${what}\n\n${USAGE}`, 2)
  return args[0] as string
}

function nameArgument(args: string[], command: string): string {
  return checkName('name', oneArgument(args, 'user name', command))
}

async function loadUser(ctx: Context, name: string): Promise<UserRecord> {
  const text = await kvGet(ctx.target, userKey(ctx.realm, name))
  if (text === null) throw new CliError(`no user "${name}" in realm "${ctx.realm}"`)
  const record = decodeUserRecord(text)
  if (record === undefined) {
    throw new CliError(`the record of "${name}" in realm "${ctx.realm}" is damaged; remove it`)
  }
  return record
}

async function save(ctx: Context, record: UserRecord): Promise<void> {
  await kvPutMany(ctx.target, recordEntries({ ...record, updatedAt: new Date().toISOString() }))
}

/** Checks before changing anything that --revoke-at can be honoured. */
function revocationToken(ctx: Context): string | undefined {
  if (ctx.options['revoke-at'] === undefined) return undefined
  const token = process.env.GATE_ADMIN_TOKEN
  if (!token) throw new CliError('--revoke-at needs the gate admin token in GATE_ADMIN_TOKEN')
  return token
}

async function revoke(ctx: Context, token: string | undefined, name: string): Promise<void> {
  const url = ctx.options['revoke-at']
  if (url === undefined || token === undefined) {
    say(
      `note: sessions of ${name} already cached at gates stay valid until they expire or are revoked (--revoke-at)`
    )
    return
  }
  const result = await revokeAtGate(url, token, ctx.realm, name)
  if (result.kind !== 'revoked') throw new CliError(`the change is saved, but ${result.message}`)
  ctx.out(result.message)
}

const COMMANDS: Record<string, (ctx: Context, args: string[]) => Promise<void>> = {
  async add(ctx, args) {
    const name = nameArgument(args, 'add')
    const groups = checkGroups(ctx.options.group)
    if ((await kvGet(ctx.target, userKey(ctx.realm, name))) !== null) {
      throw new CliError(
        `user "${name}" already exists in realm "${ctx.realm}" (passwd changes its password)`
      )
    }
    const password = await readNewPassword(name)
    await save(ctx, {
      name,
      realm: ctx.realm,
      hashes: hashesForPassword(name, ctx.realm, password),
      groups,
      disabled: false,
      source: 'cli',
      updatedAt: '',
    })
    ctx.out(
      `added ${name} to realm ${ctx.realm}${groups.length ? ` (groups: ${groups.join(', ')})` : ''}`
    )
  },

  async passwd(ctx, args) {
    const name = nameArgument(args, 'passwd')
    const token = revocationToken(ctx)
    const record = await loadUser(ctx, name)
    const password = await readNewPassword(name)
    // A new password gives every hash function, so an htdigest import becomes a full user.
    await save(ctx, {
      ...record,
      hashes: hashesForPassword(name, ctx.realm, password),
      source: 'cli',
    })
    ctx.out(`password of ${name} in realm ${ctx.realm} changed`)
    await revoke(ctx, token, name)
  },

  async remove(ctx, args) {
    const name = nameArgument(args, 'remove')
    const token = revocationToken(ctx)
    await loadUser(ctx, name)
    await kvDeleteMany(ctx.target, recordKeys(ctx.realm, name))
    ctx.out(`removed ${name} from realm ${ctx.realm}`)
    await revoke(ctx, token, name)
  },

  async disable(ctx, args) {
    const name = nameArgument(args, 'disable')
    const token = revocationToken(ctx)
    const record = await loadUser(ctx, name)
    await save(ctx, { ...record, disabled: true })
    ctx.out(`disabled ${name} in realm ${ctx.realm}`)
    await revoke(ctx, token, name)
  },

  async enable(ctx, args) {
    const name = nameArgument(args, 'enable')
    const record = await loadUser(ctx, name)
    await save(ctx, { ...record, disabled: false })
    ctx.out(`enabled ${name} in realm ${ctx.realm}`)
  },

  async list(ctx, args) {
    if (args.length > 0) throw new CliError(`list takes no arguments\n\n${USAGE}`, 2)
    const prefix = ctx.options.realm === undefined ? USER_PREFIX : `${USER_PREFIX}${ctx.realm}:`
    const users = (await kvList(ctx.target, prefix)).flatMap((key) => {
      const id = parseUserKey(key.name)
      return id === undefined ? [] : [{ ...id, ...key.metadata }]
    })
    if (ctx.options.json) {
      ctx.out(JSON.stringify(users, null, 2))
      return
    }
    if (users.length === 0) {
      ctx.out('no users')
      return
    }
    const rows = users.map((u) => [
      u.realm,
      u.name,
      u.disabled ? 'disabled' : 'enabled',
      (u.hashes ?? []).join(','),
      u.source ?? '',
      (u.groups ?? []).join(','),
    ])
    const header = ['REALM', 'NAME', 'STATUS', 'HASHES', 'SOURCE', 'GROUPS']
    const widths = header.map((h, i) =>
      Math.max(h.length, ...rows.map((r) => (r[i] as string).length))
    )
    for (const row of [header, ...rows]) {
      ctx.out(
        row
          .map((cell, i) => cell.padEnd(widths[i] as number))
          .join('  ')
          .trimEnd()
      )
    }
  },

  async 'import-htdigest'(ctx, args) {
    const file = oneArgument(args, 'file', 'import-htdigest')
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`)
    }
    const parsed = parseHtdigest(text)
    if (parsed.kind === 'invalid') {
      const lines = parsed.problems.map((p) => `${file}:${p.line}: ${p.message}`)
      throw new CliError(`nothing imported, ${file} has bad lines:\n${lines.join('\n')}`)
    }
    const groups = checkGroups(ctx.options.group)
    const wanted =
      ctx.options.realm === undefined
        ? parsed.users
        : parsed.users.filter((u) => u.realm === ctx.realm)
    const skipped = parsed.users.length - wanted.length
    if (!ctx.options.replace) {
      const existing = new Set((await kvList(ctx.target, USER_PREFIX)).map((k) => k.name))
      const clashes = wanted.filter((u) => existing.has(userKey(u.realm, u.name)))
      if (clashes.length > 0) {
        const list = clashes.map(
          (u) => `${file}:${u.line}: "${u.name}" already exists in realm "${u.realm}"`
        )
        throw new CliError(`nothing imported (use --replace to overwrite):\n${list.join('\n')}`)
      }
    }
    const now = new Date().toISOString()
    const entries = []
    for (const user of wanted) {
      entries.push(
        ...recordEntries({
          name: user.name,
          realm: user.realm,
          hashes: { MD5: user.md5 },
          groups,
          disabled: false,
          source: 'htdigest',
          updatedAt: now,
        })
      )
    }
    await kvPutMany(ctx.target, entries)
    const realms = [...new Set(wanted.map((u) => u.realm))].join(', ')
    ctx.out(
      `imported ${wanted.length} user(s)${realms ? ` into ${realms}` : ''}${skipped ? `, skipped ${skipped} of other realms` : ''}`
    )
    if (wanted.length > 0) {
      say(
        'note: htdigest holds MD5 hashes only: these users can log in with MD5 and MD5-sess; SHA-256 logins are refused (unsupported_algorithm) until `passwd` gives them every hash'
      )
    }
  },

  async export(ctx, args) {
    if (args.length > 0) throw new CliError(`export takes no arguments\n\n${USAGE}`, 2)
    const prefix = ctx.options.realm === undefined ? USER_PREFIX : `${USER_PREFIX}${ctx.realm}:`
    const keys = (await kvList(ctx.target, prefix)).map((k) => k.name)
    const values = await kvGetMany(ctx.target, keys)
    const records: UserRecord[] = []
    for (const key of keys) {
      const record = decodeUserRecord(values.get(key) ?? '')
      if (record === undefined) say(`warning: skipped the damaged or vanished record ${key}`)
      else records.push(record)
    }
    if (ctx.options.htdigest) {
      for (const r of records) {
        if (r.hashes.MD5 === undefined) say(`warning: ${r.name} (${r.realm}) has no MD5 hash`)
        else ctx.out(`${r.name}:${r.realm}:${r.hashes.MD5}`)
      }
      return
    }
    const backup = {
      format: 'digest-gate-users',
      version: 1,
      exportedAt: new Date().toISOString(),
      hashFunctions: HASH_NAMES,
      users: records,
    }
    ctx.out(JSON.stringify(backup, null, 2))
  },

  async token(ctx, args) {
    const serverId = oneArgument(args, 'serverId', 'token')
    const expires = ctx.options.expires ?? DEFAULT_TOKEN_LIFETIME
    const lifetime = parseDuration(expires)
    if (lifetime === undefined) {
      throw new CliError(
        `--expires takes a whole number and a unit (s m h d w y), e.g. 90d or 12h: ${JSON.stringify(expires)}`,
        2
      )
    }
    const { secret, note } = chooseTokenSecret({
      remote: ctx.target.remote,
      fromEnvironment: process.env.AUTHORITY_SECRET,
      readLocal: () => readDotenv(join(ROOT, 'authority', '.dev.vars')).get('AUTHORITY_SECRET'),
      localFile: 'authority/.dev.vars',
    })
    const now = Math.floor(Date.now() / 1000)
    const claims = { serverId, realms: ctx.realms, expiresAt: now + lifetime }
    let token: string
    try {
      token = await mintGateToken(secret, claims)
    } catch (error) {
      throw new CliError((error as Error).message)
    }
    say(note)
    say(describeToken(claims, now, ctx.options.expires === undefined))
    ctx.out(token)
  },

  async 'seed-demo'(ctx, args) {
    if (args.length > 0) throw new CliError(`seed-demo takes no arguments\n\n${USAGE}`, 2)
    const { created, kept } = await seedDemo(ctx.target, { reset: ctx.options.reset })
    ctx.out(
      `demo users in realm ${DEFAULT_REALM}: created ${created.length ? created.join(', ') : 'none'}; kept ${kept.length ? kept.join(', ') : 'none'}`
    )
  },
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${USAGE}`, 2)
  }
  const [command, ...args] = parsed.positionals
  if (parsed.values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE)
    return
  }
  const run = COMMANDS[command]
  if (run === undefined) throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2)
  const options = parsed.values
  if (options.remote && options['persist-to'] !== undefined) {
    throw new CliError('--remote and --persist-to exclude each other', 2)
  }
  const realms = [...new Set(options.realm ?? [DEFAULT_REALM])].map((r) => checkName('realm', r))
  if (command !== 'token') {
    if (realms.length > 1) throw new CliError(`${command} takes one --realm`, 2)
    if (options.expires !== undefined) throw new CliError('--expires goes with token only', 2)
  }
  const ctx: Context = {
    options,
    realm: realms[0] as string,
    realms,
    target: {
      remote: options.remote ?? false,
      persistTo: resolve(options['persist-to'] ?? join(ROOT, '.wrangler', 'state')),
      config: join(ROOT, 'authority', 'wrangler.toml'),
      cwd: ROOT,
      wrangler: join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
    },
    out: (line) => process.stdout.write(`${line}\n`),
  }
  await run(ctx, args)
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof CliError || error instanceof WranglerError) {
    process.stderr.write(`users: ${error.message}\n`)
    process.exitCode = error instanceof CliError ? error.exitCode : 1
    return
  }
  process.stderr.write(`users: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`)
  process.exitCode = 1
})
