/**
 * The users CLI for real: `node scripts/users.ts` against a local store in a temporary
 * --persist-to directory, through real `wrangler kv` runs (about 2 s each, hence few of them).
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunResult, runProgram } from '../../scripts/stack/process.ts'
import { verifyGateToken } from '../../src/authority-protocol/token.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')
const CLI = join(ROOT, 'scripts', 'users.ts')
const WRANGLER_TIMEOUT = 60_000

let dir: string
let persistTo: string

function users(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; store?: false } = {}
): Promise<RunResult> {
  const store = options.store === false ? [] : ['--persist-to', persistTo]
  return runProgram(process.execPath, [CLI, ...args, ...store], {
    cwd: ROOT,
    env: { ...process.env, AUTHORITY_SECRET: '', ...options.env },
    input: options.stdin,
  })
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex')
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const sha512256 = (text: string) => createHash('sha512-256').update(text).digest('hex')

/** A stand-in for the gate's admin endpoint, recording what it was asked. */
let gate: Server
let gateUrl: string
const revocations: { method?: string; url?: string; authorization?: string }[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'users-cli-test-'))
  persistTo = join(dir, 'state')
  gate = createServer((request: IncomingMessage, response) => {
    revocations.push({
      method: request.method,
      url: request.url,
      authorization: request.headers.authorization,
    })
    response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"revoked":2}')
  })
  await new Promise<void>((done) => gate.listen(0, '127.0.0.1', done))
  gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/.digest-gate/admin`
})

afterAll(() => {
  gate?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('without the store', () => {
  it('mints gate tokens from AUTHORITY_SECRET: the default realm, a year, said on stderr', async () => {
    const before = Math.floor(Date.now() / 1000)
    const run = await users(['token', 'gate-local'], { env: { AUTHORITY_SECRET: 'cli-secret' } })
    expect(run.code).toBe(0)
    const check = await verifyGateToken('cli-secret', run.stdout.trim())
    if (check.kind === 'invalid')
      throw new Error(`the minted token does not verify: ${check.reason}`)
    expect(check.claims).toMatchObject({ serverId: 'gate-local', realms: ['digest-gate'] })
    const lifetime = check.claims.expiresAt - before
    expect(lifetime).toBeGreaterThanOrEqual(365 * 86_400)
    expect(lifetime).toBeLessThan(365 * 86_400 + 60)
    const when = new Date(check.claims.expiresAt * 1000).toISOString()
    expect(run.stderr).toContain('signed with AUTHORITY_SECRET from the environment')
    expect(run.stderr).toContain(`token for gate-local, realm digest-gate; expires ${when}`)
    expect(run.stderr).toContain('the default: --expires to choose')
    expect(run.stderr).not.toContain(run.stdout.trim())
  })

  it('mints a token for several realms and a chosen lifetime', async () => {
    const before = Math.floor(Date.now() / 1000)
    const run = await users(
      ['token', 'gate-prod', '--realm', 'api', '--realm', 'digest-gate', '--expires', '12h'],
      { env: { AUTHORITY_SECRET: 'cli-secret' }, store: false }
    )
    expect(run.code).toBe(0)
    const check = await verifyGateToken('cli-secret', run.stdout.trim())
    if (check.kind === 'invalid')
      throw new Error(`the minted token does not verify: ${check.reason}`)
    expect(check.claims.realms).toEqual(['api', 'digest-gate'])
    expect(check.claims.expiresAt - before).toBeGreaterThanOrEqual(12 * 3600)
    expect(check.claims.expiresAt - before).toBeLessThan(12 * 3600 + 60)
  })

  it('with --remote, refuses to sign without AUTHORITY_SECRET in the environment', async () => {
    const run = await users(['token', 'gate-prod', '--remote'], { store: false })
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain('with --remote, set AUTHORITY_SECRET in the environment')
    const ok = await users(['token', 'gate-prod', '--remote'], {
      env: { AUTHORITY_SECRET: 'deployed-secret' },
      store: false,
    })
    expect(ok.code).toBe(0)
    expect((await verifyGateToken('deployed-secret', ok.stdout.trim())).kind).toBe('valid')
  })

  it('refuses a bad --expires, and --expires or several realms elsewhere', async () => {
    const env = { AUTHORITY_SECRET: 'cli-secret' }
    for (const args of [
      ['token', 'gate', '--expires', '12x'],
      ['token', 'gate', '--expires', '0d'],
      ['list', '--expires', '1d'],
      ['list', '--realm', 'a', '--realm', 'b'],
    ]) {
      const run = await users(args, { env })
      expect(run.code).toBe(2)
      expect(run.stdout).toBe('')
    }
    const far = await users(['token', 'gate', '--expires', '999999y'], { env })
    expect(far.code).toBe(1)
    expect(far.stderr).toContain('expiresAt must be')
  })

  it('refuses a password on the command line and unknown commands', async () => {
    const extra = await users(['add', 'dave', 'hunter2'])
    expect(extra.code).toBe(2)
    expect(extra.stderr).toContain('add takes one user name')
    expect((await users(['frobnicate'])).code).toBe(2)
    expect((await users(['add', 'a:b'])).stderr).toContain("must not contain ':'")
  })

  it('rejects a bad htdigest file with line numbers, importing nothing', async () => {
    const file = join(dir, 'bad.htdigest')
    writeFileSync(
      file,
      [
        `ok:digest-gate:${md5('ok:digest-gate:pw')}`,
        'two:fields',
        'bad:digest-gate:not-a-hash',
        `ok:digest-gate:${md5('ok:digest-gate:pw')}`,
      ].join('\n')
    )
    const run = await users(['import-htdigest', file])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('nothing imported')
    expect(run.stderr).toContain(`${file}:2: expected user:realm:hash`)
    expect(run.stderr).toContain(`${file}:3: the hash must be 32 hexadecimal digits`)
    expect(run.stderr).toContain(`${file}:4: user "ok" of realm "digest-gate" repeats line 1`)
  })
})

describe('against a local store', () => {
  it(
    'add, then seed-demo keeps the existing user',
    async () => {
      const add = await users(['add', 'alice', '--group', 'ops'], { stdin: 'alice-own-pass\n' })
      expect(add.stderr).toBe('')
      expect(add.stdout).toContain('added alice to realm digest-gate (groups: ops)')
      const seed = await users(['seed-demo'])
      expect(seed.code).toBe(0)
      expect(seed.stdout).toContain('created bob, Jäsøn Doe; kept alice')
    },
    WRANGLER_TIMEOUT
  )

  it(
    'refuses a duplicate add and changes to unknown users',
    async () => {
      const again = await users(['add', 'alice'], { stdin: 'whatever\n' })
      expect(again.code).toBe(1)
      expect(again.stderr).toContain('user "alice" already exists in realm "digest-gate"')
      const unknown = await users(['passwd', 'nobody'], { stdin: 'x\n' })
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toContain('no user "nobody" in realm "digest-gate"')
    },
    WRANGLER_TIMEOUT
  )

  it(
    'imports htdigest users (MD5 only)',
    async () => {
      const file = join(dir, 'users.htdigest')
      writeFileSync(
        file,
        `# exported from Apache\nharry:digest-gate:${md5('harry:digest-gate:ht-pass').toUpperCase()}\nsally:other-realm:${md5('sally:other-realm:pw')}\n`
      )
      const run = await users(['import-htdigest', file])
      expect(run.code).toBe(0)
      expect(run.stdout).toContain('imported 2 user(s) into digest-gate, other-realm')
      expect(run.stderr).toContain('MD5 hashes only')
    },
    WRANGLER_TIMEOUT
  )

  it(
    'disables a user and revokes its contexts at the gate',
    async () => {
      const run = await users(['disable', 'bob', '--revoke-at', gateUrl], {
        env: { GATE_ADMIN_TOKEN: 'admin-token' },
      })
      expect(run.code).toBe(0)
      expect(run.stdout).toContain('disabled bob')
      expect(run.stdout).toContain('gate revoked the contexts of bob (200 {"revoked":2})')
      expect(revocations).toEqual([
        {
          method: 'POST',
          url: '/.digest-gate/admin/users/digest-gate/bob/revoke',
          authorization: 'Bearer admin-token',
        },
      ])
    },
    WRANGLER_TIMEOUT
  )

  it(
    'sets a new password with every hash function, removes a user',
    async () => {
      const passwd = await users(['passwd', 'harry'], { stdin: 'new-harry-pass\n' })
      expect(passwd.code).toBe(0)
      const remove = await users(['remove', 'Jäsøn Doe'])
      expect(remove.code).toBe(0)
      expect(remove.stdout).toContain('removed Jäsøn Doe')
    },
    WRANGLER_TIMEOUT
  )

  it(
    'exports every record with its hashes, never a password',
    async () => {
      const run = await users(['export'])
      expect(run.code).toBe(0)
      const backup = JSON.parse(run.stdout)
      expect(backup).toMatchObject({ format: 'digest-gate-users', version: 1 })
      const byName = Object.fromEntries(
        backup.users.map((u: { name: string }) => [u.name, u])
      ) as Record<string, Record<string, unknown>>
      expect(Object.keys(byName).sort()).toEqual(['alice', 'bob', 'harry', 'sally'])
      const ha1 = 'alice:digest-gate:alice-own-pass'
      expect(byName.alice).toMatchObject({
        realm: 'digest-gate',
        groups: ['ops'],
        disabled: false,
        source: 'cli',
        hashes: { MD5: md5(ha1), 'SHA-256': sha256(ha1), 'SHA-512-256': sha512256(ha1) },
      })
      expect(byName.bob).toMatchObject({ disabled: true, groups: [] })
      expect(byName.harry).toMatchObject({
        source: 'cli',
        hashes: { 'SHA-256': sha256('harry:digest-gate:new-harry-pass') },
      })
      expect(byName.sally).toEqual(
        expect.objectContaining({
          realm: 'other-realm',
          source: 'htdigest',
          hashes: { MD5: md5('sally:other-realm:pw') },
        })
      )
      expect(run.stdout).not.toContain('alice-own-pass')
    },
    WRANGLER_TIMEOUT
  )

  it(
    'lists the users of a realm from the key metadata',
    async () => {
      const run = await users(['list', '--json', '--realm', 'digest-gate'])
      expect(run.code).toBe(0)
      expect(JSON.parse(run.stdout)).toEqual([
        {
          realm: 'digest-gate',
          name: 'alice',
          disabled: false,
          source: 'cli',
          groups: ['ops'],
          hashes: ['MD5', 'SHA-256', 'SHA-512-256'],
        },
        expect.objectContaining({ name: 'bob', disabled: true }),
        expect.objectContaining({ name: 'harry', source: 'cli' }),
      ])
    },
    WRANGLER_TIMEOUT
  )
})
