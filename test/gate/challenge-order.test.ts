/**
 * The challenges' order per client: arrangeAlgorithms() on the User-Agents of the clients
 * docs/clients.md describes (as they send them), fast-check properties, and the gate's 401 answers
 * inside workerd, each followed by a login the way that client reads the folded line.
 */
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ALGORITHMS, hashOf } from '../../src/digest/algorithms.ts'
import type { AlgorithmName } from '../../src/digest/types.ts'
import { arrangeAlgorithms } from '../../src/gate/challenge-order.ts'
import { authorization, captureDecisions, challengeOf, GATE, gate, installPeers } from './fakes.ts'
import { fakeClock, holdTimers } from './support/clock.ts'

const DEFAULT: AlgorithmName[] = ['SHA-256', 'MD5']

/** User-Agents as the clients send them (recorded on the wire where the client is at hand). */
const UA = {
  curl: 'curl/7.88.1',
  curl86: 'curl/8.6.0',
  curl87: 'curl/8.7.1',
  curlOld: 'curl/7.52.1',
  requests: 'python-requests/2.28.1',
  httpie: 'HTTPie/3.2.2',
  pythonUrllib: 'Python-urllib/3.11',
  wget: 'Wget/1.21.3',
  nodeUrllib: 'node-urllib/4.9.1 Node.js/24.21.0 (linux; x64)',
  axios: 'axios/1.7.9',
  // digest-fetch goes through Node's fetch: its algorithm comes from its own options.
  digestFetch: 'node',
  headlessChromium:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36',
  chrome:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  chrome116:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36',
  edge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86',
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0',
  firefox92: 'Mozilla/5.0 (X11; Linux x86_64; rv:92.0) Gecko/20100101 Firefox/92.0',
  safari:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15',
} as const

describe('arrangeAlgorithms: the default configuration (SHA-256, MD5)', () => {
  it.each([
    // Last readers get SHA-256 last.
    ['curl', UA.curl, ['MD5', 'SHA-256']],
    ['python-requests', UA.requests, ['MD5', 'SHA-256']],
    ['HTTPie', UA.httpie, ['MD5', 'SHA-256']],
    ['headless Chromium', UA.headlessChromium, ['MD5', 'SHA-256']],
    ['Chrome', UA.chrome, ['MD5', 'SHA-256']],
    ['Edge', UA.edge, ['MD5', 'SHA-256']],
    // Firefox picks the strongest wherever it stands; last suits a last reader as well.
    ['Firefox', UA.firefox, ['MD5', 'SHA-256']],
    // MD5-only first readers get MD5 first.
    ['wget', UA.wget, ['MD5', 'SHA-256']],
    ['npm urllib', UA.nodeUrllib, ['MD5', 'SHA-256']],
    ['axios-digest-auth', UA.axios, ['MD5', 'SHA-256']],
    // An MD5-only last reader keeps MD5 last.
    ['Python urllib', UA.pythonUrllib, ['SHA-256', 'MD5']],
    // Unknown or unsure: the configured order.
    ['digest-fetch (Node fetch)', UA.digestFetch, ['SHA-256', 'MD5']],
    ['Safari', UA.safari, ['SHA-256', 'MD5']],
    ['Chrome 116 (MD5 only)', UA.chrome116, ['SHA-256', 'MD5']],
    ['curl 7.52 (MD5 only)', UA.curlOld, ['SHA-256', 'MD5']],
    ['Firefox 92', UA.firefox92, ['SHA-256', 'MD5']],
    ['no User-Agent', undefined, ['SHA-256', 'MD5']],
    ['an empty User-Agent', '', ['SHA-256', 'MD5']],
  ])('%s', (_, userAgent, expected) => {
    expect(arrangeAlgorithms(DEFAULT, userAgent)).toEqual(expected)
  })
})

describe('arrangeAlgorithms: other configurations', () => {
  it('puts SHA-512-256 last for curl from 8.7 only (older curl hashes it with SHA-256)', () => {
    const configured: AlgorithmName[] = ['SHA-512-256', 'SHA-256', 'MD5']
    expect(arrangeAlgorithms(configured, UA.curl87)).toEqual(['SHA-256', 'MD5', 'SHA-512-256'])
    expect(arrangeAlgorithms(configured, UA.curl86)).toEqual(['SHA-512-256', 'MD5', 'SHA-256'])
  })

  it('never puts an algorithm a client lacks where it reads', () => {
    // requests has no SHA-256-sess (it would send no Authorization at all).
    expect(arrangeAlgorithms(['MD5', 'SHA-256-sess'], UA.requests)).toEqual(['SHA-256-sess', 'MD5'])
    // Chromium and Firefox know no SHA-512-256.
    expect(arrangeAlgorithms(['MD5', 'SHA-512-256', 'SHA-256'], UA.chrome)).toEqual([
      'MD5',
      'SHA-512-256',
      'SHA-256',
    ])
    expect(arrangeAlgorithms(['SHA-256', 'SHA-512-256'], UA.firefox)).toEqual([
      'SHA-512-256',
      'SHA-256',
    ])
    // wget computes MD5 and MD5-sess only.
    expect(arrangeAlgorithms(['SHA-256', 'MD5-sess'], UA.wget)).toEqual(['MD5-sess', 'SHA-256'])
  })

  it('between the two forms of one hash, keeps the configured preference', () => {
    expect(arrangeAlgorithms(['SHA-256-sess', 'SHA-256', 'MD5'], UA.chrome)).toEqual([
      'SHA-256',
      'MD5',
      'SHA-256-sess',
    ])
    expect(arrangeAlgorithms(['SHA-256', 'SHA-256-sess', 'MD5'], UA.chrome)).toEqual([
      'SHA-256-sess',
      'MD5',
      'SHA-256',
    ])
  })

  it('leaves the configured order when the client supports none of it', () => {
    expect(arrangeAlgorithms(['SHA-256', 'SHA-256-sess'], UA.wget)).toEqual([
      'SHA-256',
      'SHA-256-sess',
    ])
    expect(arrangeAlgorithms([], UA.curl)).toEqual([])
  })

  it('leaves a configuration of one algorithm alone', () => {
    for (const userAgent of Object.values(UA)) {
      expect(arrangeAlgorithms(['SHA-256'], userAgent)).toEqual(['SHA-256'])
    }
  })
})

describe('arrangeAlgorithms: properties', () => {
  const configuredArb = fc.array(fc.constantFrom(...ALGORITHMS), { maxLength: 8 })
  const knownUserAgent = fc.oneof(
    fc.constantFrom(...Object.values(UA)),
    fc
      .tuple(
        fc.constantFrom('curl/', 'python-requests/', 'Wget/', 'Chrome/', 'Firefox/', 'HTTPie/'),
        fc.nat({ max: 300 }),
        fc.nat({ max: 99 }),
        fc.string()
      )
      .map(([name, major, minor, tail]) => `${name}${major}.${minor}${tail}`)
  )
  const anyUserAgent = fc.oneof(
    knownUserAgent,
    fc.string({ unit: 'binary', maxLength: 2000 }),
    fc.string({ unit: 'grapheme' })
  )
  const sorted = (list: readonly string[]) => [...list].sort()

  it('always returns a permutation of the configured list, and never throws', () => {
    fc.assert(
      fc.property(configuredArb, anyUserAgent, (configured, userAgent) => {
        expect(sorted(arrangeAlgorithms(configured, userAgent))).toEqual(sorted(configured))
      }),
      { numRuns: 2000 }
    )
  })

  it('gives unknown User-Agents the configured order', () => {
    // Every recognised client names itself as `token/version`: without a `/` nothing matches.
    const unknown = fc.string({ unit: 'binary' }).map((s) => s.replaceAll('/', ' '))
    fc.assert(
      fc.property(configuredArb, fc.option(unknown, { nil: undefined }), (configured, ua) => {
        expect(arrangeAlgorithms(configured, ua)).toEqual(configured)
      }),
      { numRuns: 1000 }
    )
  })

  it('gives curl from 8.7 the strongest configured hash last', () => {
    const strength = (a: AlgorithmName) => ['MD5', 'SHA-256', 'SHA-512-256'].indexOf(hashOf(a))
    fc.assert(
      fc.property(
        configuredArb.filter((c) => c.length > 0),
        fc.integer({ min: 7, max: 99 }),
        (configured, minor) => {
          const last = arrangeAlgorithms(configured, `curl/8.${minor}.0`).at(-1) as AlgorithmName
          expect(strength(last)).toBe(Math.max(...configured.map(strength)))
        }
      )
    )
  })

  it('gives wget an MD5 form first whenever one is configured', () => {
    fc.assert(
      fc.property(configuredArb, (configured) => {
        const first = arrangeAlgorithms(configured, UA.wget)[0]
        const md5 = configured.some((a) => a === 'MD5' || a === 'MD5-sess')
        expect(first === 'MD5' || first === 'MD5-sess').toBe(md5)
      })
    )
  })
})

describe('the 401 answers per User-Agent', () => {
  let decisions: ReturnType<typeof captureDecisions>
  beforeEach(() => {
    installPeers()
    decisions = captureDecisions()
    fakeClock()
    holdTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  const algorithmsOf = (res: Response) =>
    challengeOf(res).all.map((c) => /algorithm=([A-Za-z0-9-]+)/.exec(c)?.[1])

  const ask = (fetchGate: ReturnType<typeof gate>, userAgent?: string) =>
    fetchGate(
      new Request(`${GATE}/private/x`, {
        headers: userAgent === undefined ? {} : { 'user-agent': userAgent },
      })
    )

  it.each([
    ['curl', UA.curl, ['MD5', 'SHA-256']],
    ['Chromium', UA.headlessChromium, ['MD5', 'SHA-256']],
    ['Firefox', UA.firefox, ['MD5', 'SHA-256']],
    ['python-requests', UA.requests, ['MD5', 'SHA-256']],
    ['wget', UA.wget, ['MD5', 'SHA-256']],
    ['Python urllib', UA.pythonUrllib, ['SHA-256', 'MD5']],
    ['an unknown client', 'ExampleAgent/1.0', ['SHA-256', 'MD5']],
    ['no User-Agent', undefined, ['SHA-256', 'MD5']],
  ])('%s: challenges in its order, one nonce, Vary: User-Agent, no-store', async (_, ua, order) => {
    const res = await ask(gate(), ua)
    expect(res.status).toBe(401)
    expect(algorithmsOf(res)).toEqual(order)
    const { nonce, opaque, all } = challengeOf(res)
    for (const challenge of all) {
      expect(challenge).toContain(`nonce="${nonce}"`)
      expect(challenge).toContain(`opaque="${opaque}"`)
    }
    expect(res.headers.get('vary')).toBe('User-Agent')
    expect(res.headers.get('cache-control')).toBe('no-store')
  })

  it('offers only what is configured, in the client order', async () => {
    const configured = gate({ ALGORITHMS: 'SHA-256-sess,MD5-sess,SHA-256' })
    expect(algorithmsOf(await ask(configured, UA.curl))).toEqual([
      'MD5-sess',
      'SHA-256',
      'SHA-256-sess',
    ])
    expect(algorithmsOf(await ask(configured, UA.wget))).toEqual([
      'MD5-sess',
      'SHA-256-sess',
      'SHA-256',
    ])
    expect(algorithmsOf(await ask(configured, UA.requests))).toEqual([
      'SHA-256-sess',
      'MD5-sess',
      'SHA-256',
    ])
  })

  it.each([
    ['curl reads the last challenge', UA.curl, 'last', 'SHA-256'],
    ['wget reads the first challenge', UA.wget, 'first', 'MD5'],
  ] as const)('%s: the login on it goes through', async (_, ua, reads, expected) => {
    const fetchGate = gate()
    const challenge = challengeOf(await ask(fetchGate, ua))
    const read = reads === 'first' ? challenge.all[0] : challenge.all.at(-1)
    const algorithm = /algorithm=([A-Za-z0-9-]+)/.exec(read ?? '')?.[1] as 'SHA-256' | 'MD5'
    expect(algorithm).toBe(expected)
    const res = await fetchGate(
      new Request(`${GATE}/private/x`, {
        headers: {
          'user-agent': ua,
          authorization: await authorization({
            user: 'alice',
            password: 'wonderland',
            nonce: challenge.nonce,
            opaque: challenge.opaque,
            uri: '/private/x',
            algorithm,
          }),
        },
      })
    )
    expect(res.status).toBe(200)
    expect(decisions.at(-1)?.algorithm).toBe(expected)
  })

  it('a stale challenge comes in the client order too', async () => {
    const fetchGate = gate()
    const challenge = challengeOf(await ask(fetchGate, UA.chrome))
    const headers = {
      'user-agent': UA.chrome,
      authorization: await authorization({
        user: 'alice',
        password: 'wonderland',
        nonce: challenge.nonce,
        opaque: challenge.opaque,
        uri: '/private/x',
        algorithm: 'SHA-256',
      }),
    }
    expect((await fetchGate(new Request(`${GATE}/private/x`, { headers }))).status).toBe(200)
    const replay = await fetchGate(new Request(`${GATE}/private/x`, { headers }))
    expect(replay.status).toBe(401)
    expect(challengeOf(replay).stale).toBe(true)
    expect(algorithmsOf(replay)).toEqual(['MD5', 'SHA-256'])
    expect(replay.headers.get('vary')).toBe('User-Agent')
  })
})
