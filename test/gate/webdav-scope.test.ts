/**
 * WebDAV methods act on more than their request path: COPY and MOVE write where their Destination
 * points, DELETE, MOVE, COPY, LOCK and PROPFIND reach every member of a collection. The route rules
 * must hold for all of it. Asserted on what the origin receives (the gate under test has the
 * project's rules: /public/* public, /admin/* for the admin group, everything else for any user).
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { matchRoute, parseRoutes, rulesUnder } from '../../src/gate/routes.ts'
import { webdavScope } from '../../src/gate/webdav-scope.ts'
import {
  captureDecisions,
  client,
  type FakeOrigin,
  GATE,
  type GateFetch,
  installPeers,
} from './fakes.ts'

let origin: FakeOrigin
beforeEach(() => {
  ;({ origin } = installPeers())
  captureDecisions()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const worker: GateFetch = (req) => exports.default.fetch(req)

/** Spellings of a destination inside /admin, as origins may read them. */
const INTO_ADMIN = [
  '/admin/loot',
  `${GATE}/admin/loot`,
  '/ADMIN/loot',
  '/%61dmin/loot',
  '/public/../admin/loot',
  '/public/%2e%2e/admin/loot',
  'http://elsewhere.example/admin/loot',
]

describe('Destination (COPY, MOVE)', () => {
  it('an anonymous COPY from a public path into a protected one: challenged, nothing forwarded', async () => {
    for (const destination of INTO_ADMIN) {
      const res = await worker(
        new Request(`${GATE}/public/page`, { method: 'COPY', headers: { destination } })
      )
      expect(res.status, destination).toBe(401)
    }
    expect(origin.requests).toHaveLength(0)
  })

  it('an anonymous COPY within the public area passes, its Destination canonical', async () => {
    const res = await worker(
      new Request(`${GATE}/public/page`, {
        method: 'COPY',
        headers: { destination: `${GATE}/public/./copies//page%20two` },
      })
    )
    expect(res.status).toBe(200)
    expect(origin.requests[0]?.method).toBe('COPY')
    expect(origin.requests[0]?.headers.destination).toBe(`${GATE}/public/copies/page%20two`)
  })

  it('a user outside admin moving or copying into /admin: 403, nothing forwarded', async () => {
    const bob = client(worker, 'bob', 'builder')
    for (const method of ['MOVE', 'COPY', 'move']) {
      for (const destination of INTO_ADMIN) {
        const res = await bob.fetch('/private/mine', { method, headers: { destination } })
        expect(res.status, `${method} ${destination}`).toBe(403)
      }
    }
    expect(origin.requests).toHaveLength(0)
  })

  it('a member of admin may; the origin gets the destination the rules saw', async () => {
    const alice = client(worker, 'alice', 'wonderland')
    const res = await alice.fetch('/private/mine', {
      method: 'MOVE',
      headers: { destination: '/public/../ADMIN/./loot' },
    })
    expect(res.status).toBe(200)
    expect(origin.requests[0]?.headers.destination).toBe(`${GATE}/ADMIN/loot`)
  })

  it('bob moving within his own area passes', async () => {
    const bob = client(worker, 'bob', 'builder')
    const res = await bob.fetch('/private/a', {
      method: 'MOVE',
      headers: { destination: '/private/b', overwrite: 'F' },
    })
    expect(res.status).toBe(200)
    expect(origin.requests[0]?.headers.destination).toBe(`${GATE}/private/b`)
  })

  it('a Destination that is no URI, or whose path the gate refuses: 400, nothing forwarded', async () => {
    const bob = client(worker, 'bob', 'builder')
    for (const destination of [
      'http://[',
      'ftp://x/admin/loot',
      '/private/a%00b',
      '/private/%2fadmin',
    ]) {
      const res = await bob.fetch('/private/a', { method: 'COPY', headers: { destination } })
      expect(res.status, destination).toBe(400)
    }
    expect(origin.requests).toHaveLength(0)
  })
})

describe('methods that act on a whole collection', () => {
  it('bob deleting, moving or copying a collection that holds /admin: 403, nothing forwarded', async () => {
    const bob = client(worker, 'bob', 'builder')
    const cases: [string, Record<string, string>][] = [
      ['DELETE', {}],
      ['MOVE', { destination: '/private/old-root' }],
      ['COPY', { destination: '/private/copy-of-root' }],
      ['COPY', { destination: '/private/copy-of-root', depth: 'infinity' }],
      ['LOCK', {}],
      ['PROPFIND', {}],
      ['PROPFIND', { depth: 'Infinity' }],
    ]
    for (const [method, headers] of cases) {
      for (const path of ['/', '//']) {
        const res = await bob.fetch(path, { method, headers })
        expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBeGreaterThanOrEqual(
          400
        )
      }
    }
    expect(origin.requests).toHaveLength(0)
  })

  it('the same on the collection itself only (Depth 0, PROPFIND Depth 1) passes', async () => {
    const bob = client(worker, 'bob', 'builder')
    for (const [method, depth] of [
      ['PROPFIND', '1'],
      ['PROPFIND', '0'],
      ['COPY', '0'],
      ['LOCK', '0'],
    ] as const) {
      const headers: Record<string, string> = { depth }
      if (method === 'COPY') headers.destination = '/private/shallow'
      expect((await bob.fetch('/', { method, headers })).status, `${method} ${depth}`).toBe(200)
    }
    expect(origin.requests.map((r) => r.method)).toEqual(['PROPFIND', 'PROPFIND', 'COPY', 'LOCK'])
  })

  it('bob deleting a collection of his own, and alice deleting the root, pass', async () => {
    const bob = client(worker, 'bob', 'builder')
    expect((await bob.fetch('/private/folder/', { method: 'DELETE' })).status).toBe(200)
    const alice = client(worker, 'alice', 'wonderland')
    expect((await alice.fetch('/', { method: 'DELETE' })).status).toBe(200)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/folder/', '/'])
  })

  it('an anonymous DELETE inside the public area passes; of a collection holding more, challenged', async () => {
    expect((await worker(new Request(`${GATE}/public/old`, { method: 'DELETE' }))).status).toBe(200)
    expect((await worker(new Request(`${GATE}/public`, { method: 'DELETE' }))).status).toBe(200)
    expect((await worker(new Request(`${GATE}/`, { method: 'DELETE' }))).status).toBe(401)
    expect(origin.requests.map((r) => r.path)).toEqual(['/public/old', '/public'])
  })

  it('a dressed-up preflight that carries a Destination is challenged', async () => {
    const res = await worker(
      new Request(`${GATE}/private/x`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'GET',
          destination: '/private/y',
        },
      })
    )
    expect(res.status).toBe(401)
    expect(origin.requests).toHaveLength(0)
  })
})

describe('rulesUnder and webdavScope', () => {
  const rules = parseRoutes(
    '[{"path":"/public/*","access":"public"},{"path":"/admin/*","groups":["admin"]},{"path":"/team/report","groups":["team"]},{"path":"/*","access":"authenticated"}]'
  )

  it('names the rules of the paths below, up to the first that takes them all', () => {
    const names = (p: string) => rulesUnder(rules, p).map((r) => r.path)
    expect(names('/')).toEqual(['/public/*', '/admin/*', '/team/report', '/*'])
    expect(names('/public/x')).toEqual(['/public/*'])
    expect(names('/team')).toEqual(['/team/report', '/*'])
    expect(names('/team/report')).toEqual(['/*'])
    expect(names('/Admin')).toEqual(['/admin/*'])
  })

  it('property: whatever path lies below, its rule is among the rules under the collection', () => {
    const segment = fc.constantFrom('public', 'admin', 'Admin', 'team', 'report', 'x', 'é')
    fc.assert(
      fc.property(
        fc.array(segment, { maxLength: 3 }),
        fc.array(segment, { minLength: 1, maxLength: 3 }),
        (dir, rest) => {
          const collection = `/${dir.join('/')}`
          const below = `${collection === '/' ? '' : collection}/${rest.join('/')}`
          const under = rulesUnder(rules, collection)
          expect(under).toContain(matchRoute(rules, below))
        }
      ),
      { numRuns: 2000 }
    )
  })

  it('a GET with neither Destination nor Depth adds nothing and reads no Depth', () => {
    const read: string[] = []
    const scope = webdavScope(
      rules,
      {
        method: 'GET',
        url: `${GATE}/x`,
        matchPath: '/x',
        header: (name) => {
          read.push(name)
          return undefined
        },
      },
      false
    )
    expect(scope).toEqual({ kind: 'scope', rules: [] })
    expect(read).toEqual(['destination'])
  })
})
