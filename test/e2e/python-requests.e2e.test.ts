/**
 * Debian's python3-requests (2.28.1) with HTTPDigestAuth: takes the last challenge, where the
 * gate puts SHA-256 for it; has no SHA-256-sess or SHA-512-256, ignores userhash. In a Session it answers
 * later requests preemptively with nc 2, 3… and a new cnonce each time.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PROJECT_ROOT } from '../../scripts/stack/paths.ts'
import { type ClientAdapter, describeClientSuite } from './support/client-suite.ts'
import { e2e } from './support/context.ts'
import { expectForwardedAs, parseEcho } from './support/echo.ts'
import { record } from './support/record.ts'
import { startRecorder } from './support/recorder.ts'
import { run } from './support/run.ts'
import { ALICE } from './support/users.ts'

// Debian's interpreter: `python3` on PATH may be another one without Debian's requests.
const PYTHON = '/usr/bin/python3'
const CLIENT = join(PROJECT_ROOT, 'test', 'e2e', 'clients', 'requests_client.py')

interface Job {
  user: string | null
  password?: string
  requests: { method?: string; url: string; json?: unknown }[]
}

interface Answer {
  /** 0 when the client raised instead of answering. */
  status: number
  body: string
  error?: string
  /** SHA-256 of the body requests actually sent (its own JSON serialisation). */
  sentSha256: string
}

async function session(job: Job): Promise<Answer[]> {
  const result = await run(PYTHON, [CLIENT], { input: JSON.stringify(job) })
  if (result.code !== 0) throw new Error(`requests client failed:\n${result.stderr}`)
  return JSON.parse(result.stdout) as Answer[]
}

const adapter: ClientAdapter = {
  id: 'requests',
  async version() {
    const result = await run(PYTHON, ['-c', 'import requests; print(requests.__version__)'])
    return `requests ${result.stdout.trim()}`
  },
  async get(url, credentials) {
    const [answer] = await session({
      user: credentials?.user ?? null,
      password: credentials?.password,
      requests: [{ url }],
    })
    if (!answer) throw new Error('requests client returned nothing')
    return { status: answer.status, body: answer.body, clientError: answer.error }
  },
}

describeClientSuite(
  adapter,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': true,
    MD5: true,
    'SHA-256-sess': 'requests 2.28 has no SHA-256-sess: raises TypeError',
    'MD5-sess': true,
    'SHA-512-256': 'requests 2.28 has no SHA-512-256: raises TypeError',
    userhash: true,
  },
  {
    algorithm: {
      default: 'SHA-256',
      'MD5,SHA-256': 'SHA-256',
      userhash: 'SHA-256',
      'SHA-256': 'SHA-256',
      MD5: 'MD5',
      'MD5-sess': 'MD5-sess',
    },
    userhash: false,
  }
)

describe('requests: one Session, several requests', () => {
  it('reuses the challenge: nc 1, 2, 3… with a new cnonce each time, all 200', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    try {
      const urls = [1, 2, 3, 4].map((n) => ({ url: `${recorder.url}/private/item-${n}` }))
      const answers = await session({ user: ALICE.name, password: ALICE.password, requests: urls })
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200])
      for (const answer of answers) expectForwardedAs(parseEcho(answer.body), ALICE.name)
      // One 401 for the first request only; then preemptive answers to the same challenge.
      expect(recorder.exchanges.map((e) => e.status)).toEqual([401, 200, 200, 200, 200])
      const sent = recorder.exchanges.filter((e) => e.digest).map((e) => e.digest)
      expect(sent.map((d) => d?.nc)).toEqual(['00000001', '00000002', '00000003', '00000004'])
      expect(new Set(sent.map((d) => d?.cnonce)).size).toBe(4)
      record({
        kind: 'check',
        client: 'requests',
        check: 'Session: 4 requests, 1 challenge, nc 1→4, fresh cnonce each',
        ok: true,
      })
    } finally {
      await recorder.close()
    }
  })

  it('a JSON POST in the Session reaches the origin unchanged', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    try {
      const payload = { order: 42, items: ['a', 'b'], note: 'naïve café' }
      const answers = await session({
        user: ALICE.name,
        password: ALICE.password,
        requests: [
          { url: `${recorder.url}/private/first` },
          { method: 'POST', url: `${recorder.url}/private/orders`, json: payload },
        ],
      })
      expect(answers.map((a) => a.status)).toEqual([200, 200])
      const post = answers[1] as Answer
      const echo = parseEcho(post.body)
      expectForwardedAs(echo, ALICE.name)
      expect(echo.method).toBe('POST')
      expect(echo.bodyLength).toBeGreaterThan(0)
      expect(echo.bodySha256).toBe(post.sentSha256)
      record({ kind: 'check', client: 'requests', check: 'JSON POST in a Session', ok: true })
    } finally {
      await recorder.close()
    }
  })
})
