/**
 * Debian's curl (7.88.1 on bookworm) with --digest: takes the first Digest header it knows; the
 * gate's challenges arrive folded into one line by workerd, where the last `algorithm` wins, and
 * the gate puts the strongest curl supports there (SHA-256 on the default gate). It supports MD5,
 * SHA-256, their -sess variants and userhash, and hashes SHA-512-256 with SHA-256 (a known
 * curl < 8.7 bug), so that one must be refused.
 */
import { describe, expect, it } from 'vitest'
import {
  type ClientAdapter,
  type Credentials,
  describeClientSuite,
} from './support/client-suite.ts'
import { e2e } from './support/context.ts'
import { expectForwardedAs, parseEcho, sha256Hex } from './support/echo.ts'
import { record } from './support/record.ts'
import { startRecorder } from './support/recorder.ts'
import { run } from './support/run.ts'
import { ALICE, BOB } from './support/users.ts'
import { commandVersion } from './support/versions.ts'

const CURL = '/usr/bin/curl'
const STATUS_MARK = '\n--status:'

/** curl answering its own 401s; resolves with the final status and body. */
async function curl(
  url: string,
  credentials: Credentials | undefined,
  extra: string[] = [],
  input?: string
) {
  const auth = credentials ? ['--digest', '-u', `${credentials.user}:${credentials.password}`] : []
  const result = await run(
    CURL,
    ['-sS', '--max-time', '20', ...auth, ...extra, '-w', `${STATUS_MARK}%{http_code}`, url],
    { input }
  )
  const at = result.stdout.lastIndexOf(STATUS_MARK)
  if (result.code !== 0 || at < 0) {
    throw new Error(`curl exited ${result.code}: ${result.stderr.trim()}`)
  }
  return {
    status: Number(result.stdout.slice(at + STATUS_MARK.length)),
    body: result.stdout.slice(0, at),
  }
}

const adapter: ClientAdapter = {
  id: 'curl',
  version: () => commandVersion(CURL, ['--version']).split(' (')[0] ?? 'curl',
  get: (url, credentials) => curl(url, credentials),
}

describeClientSuite(
  adapter,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': true,
    MD5: true,
    'SHA-256-sess': true,
    'MD5-sess': true,
    'SHA-512-256': 'curl < 8.7 hashes SHA-512-256 with SHA-256',
    userhash: true,
  },
  {
    algorithm: {
      // The strongest it supports, whatever the configured order.
      default: 'SHA-256',
      'MD5,SHA-256': 'SHA-256',
      userhash: 'SHA-256',
      'SHA-256': 'SHA-256',
      MD5: 'MD5',
      'SHA-256-sess': 'SHA-256-sess',
      'MD5-sess': 'MD5-sess',
    },
    userhash: true,
  }
)

describe('curl: requests with a body', () => {
  it('--digest POST: the body reaches the origin unchanged', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    try {
      const body = JSON.stringify({ hello: 'world', n: [1, 2, 3], text: 'é ü 漢字' })
      const answer = await curl(
        `${recorder.url}/private/upload`,
        { user: ALICE.name, password: ALICE.password },
        ['-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '@-'],
        body
      )
      expect(answer.status, answer.body).toBe(200)
      const echo = parseEcho(answer.body)
      expectForwardedAs(echo, ALICE.name)
      expect(echo.method).toBe('POST')
      expect(echo.bodyLength).toBe(Buffer.byteLength(body))
      expect(echo.bodySha256).toBe(sha256Hex(body))
      record({ kind: 'check', client: 'curl', check: 'POST with a JSON body', ok: true })
    } finally {
      await recorder.close()
    }
  })

  it('one handle, several URLs: every request authenticates (fresh 401 per URL)', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    try {
      const urls = [1, 2, 3].map((n) => `${recorder.url}/private/page-${n}`)
      const result = await run(CURL, [
        '-sS',
        '--digest',
        '-u',
        `${ALICE.name}:${ALICE.password}`,
        '-w',
        '%{http_code}\n',
        ...urls.flatMap((url) => ['-o', '/dev/null', url]),
      ])
      expect(result.stdout.trim().split('\n')).toEqual(['200', '200', '200'])
      // curl's CLI starts each URL with a 401 (no preemptive Digest across URLs).
      expect(recorder.exchanges.map((e) => e.status)).toEqual([401, 200, 401, 200, 401, 200])
    } finally {
      await recorder.close()
    }
  })
})

describe('curl: WebDAV methods', () => {
  it('MOVE and COPY: allowed where the rules allow the Destination too, forwarded canonical', async () => {
    const gate = e2e().gates.default
    const bob = { user: BOB.name, password: BOB.password }
    const intoAdmin = await curl(`${gate}/private/notes`, bob, [
      '-X',
      'MOVE',
      '-H',
      `Destination: ${gate}/public/../%61dmin/notes`,
    ])
    expect(intoAdmin.status, intoAdmin.body).toBe(403)
    const within = await curl(`${gate}/private/notes`, bob, [
      '-X',
      'COPY',
      '-H',
      'Destination: /private/./copies//notes',
      '-H',
      'Depth: 0',
    ])
    expect(within.status, within.body).toBe(200)
    const echo = parseEcho(within.body)
    expectForwardedAs(echo, BOB.name)
    expect(echo.method).toBe('COPY')
    expect(echo.destination).toBe(`${gate}/private/copies/notes`)
    // A collection holding /admin: bob may not delete it.
    expect((await curl(`${gate}/`, bob, ['-X', 'DELETE'])).status).toBe(403)
    record({
      kind: 'check',
      client: 'curl',
      check: 'WebDAV MOVE/COPY Destination checked',
      ok: true,
    })
  })
})
