/** The canonical request path: examples, refusals, and fast-check properties. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  canonicalizePath,
  canonicalizeSegments,
  foldForMatch,
  foldUnicode,
  type PathRefusal,
  pathAndQuery,
} from '../../src/gate/request-path.ts'
import { hostilePath, lenientFold, lenientRead, strictRead, whatwgPath } from './path-spellings.ts'

const canonical = (raw: string, allowParameters = false) => {
  const c = canonicalizePath(raw, { allowParameters })
  if (c.kind === 'refused') throw new Error(`refused ${JSON.stringify(raw)}: ${c.reason}`)
  return c
}

describe('canonical form', () => {
  it.each([
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/%61dmin/panel', '/admin/panel'],
    ['/%7euser/%7E%2D%5f', '/~user/~-_'],
    ['//admin///panel', '/admin/panel'],
    // RFC 3986 §5.2.4's examples (as absolute paths).
    ['/a/b/c/./../../g', '/a/g'],
    ['/mid/content=5/../6', '/mid/6'],
    ['/a/%2e%2E/b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/b/', '/a/b/'],
    ['/a//../x', '/a/x'],
    ['/PRivaTe///%2E%2E//', '/PRivaTe/'],
    ['/a/%c3%a4', '/a/%C3%A4'],
    ['/a/ä', '/a/%C3%A4'],
    ['/stra\u00dfe', '/stra%C3%9Fe'],
    ['/%e6%97%a5%e6%9c%ac', '/%E6%97%A5%E6%9C%AC'],
    ['/a b', '/a%20b'],
    ["/a%3a@!$&'()*+,=", "/a%3A@!$&'()*+,="],
    ['/[x]|^{}"<>`', '/%5Bx%5D%7C%5E%7B%7D%22%3C%3E%60'],
    ['/a%25zz', '/a%25zz'],
    ['/.digest-gate/admin', '/.digest-gate/admin'],
  ])('%j -> %s', (raw, path) => {
    expect(canonical(raw).path).toBe(path)
  })

  it('gives rules the path decoded once, in NFC', () => {
    expect(canonical('/a%3Ab/%C3%A4').matchPath).toBe('/a:b/ä')
    expect(canonical('/cafe%CC%81').matchPath).toBe('/caf\u00e9')
  })
})

describe('refusals', () => {
  it.each<[string, PathRefusal]>([
    ['admin', 'not_absolute'],
    ['', 'not_absolute'],
    ['*', 'not_absolute'],
    ['/admin%2Fpanel', 'encoded_slash'],
    ['/public/..%2fprivate', 'encoded_slash'],
    ['/a\\b', 'backslash'],
    ['/public/..%5Cprivate', 'encoded_backslash'],
    ['/a%00', 'control'],
    ['/a\u0000', 'control'],
    ['/a\t', 'control'],
    ['/a%7F', 'control'],
    ['/a%C2%85', 'control'],
    ['/a%252e', 'double_encoding'],
    ['/%252e%252e/x', 'double_encoding'],
    ['/a%2541', 'double_encoding'],
    ['/a%25%34%31', 'double_encoding'],
    ['/%25u0061dmin/x', 'double_encoding'],
    ['/a%25%75%30%30%36%31', 'double_encoding'],
    ['/a%', 'malformed_escape'],
    ['/a%zz', 'malformed_escape'],
    ['/a%2', 'malformed_escape'],
    ['/%u002e%u002e/x', 'malformed_escape'],
    ['/a%C0%AF', 'invalid_utf8'],
    ['/%c0%ae%c0%ae/x', 'invalid_utf8'],
    ['/a%C3', 'invalid_utf8'],
    ['/a%C3x', 'invalid_utf8'],
    ['/a%ED%A0%80', 'invalid_utf8'],
    ['/a\ud800', 'invalid_utf8'],
    ['/admin;x=1/panel', 'parameters'],
    ['/public/..;/private/secret', 'parameters'],
    ['/a%3Bx=1', 'encoded_delimiter'],
    ['/admin%3F/x', 'encoded_delimiter'],
    ['/admin%23/x', 'encoded_delimiter'],
    ['/a?b', 'delimiter'],
    ['/a#b', 'delimiter'],
    ['/\uff41dmin', 'lookalike'],
    ['/%EF%BD%81dmin', 'lookalike'],
    ['/\u212aey', 'lookalike'],
    ['/adm\u0130n', 'lookalike'],
    ['/a\u00a5b', 'lookalike'],
    ['/a%E2%88%95b', 'lookalike'],
    ['/a\u00a0b', 'lookalike'],
    ['/\ufb01le', 'lookalike'],
    ['/x\u3002', 'lookalike'],
    ['/x\uffe5y', 'lookalike'],
    ['/x\ufe12', 'lookalike'],
    ['/ad\u200bmin', 'invisible_character'],
    ['/ad%C2%ADmin', 'invisible_character'],
    ['/%EF%BB%BFadmin', 'invisible_character'],
    ['/a\u2028', 'invisible_character'],
    ['/\u0378', 'unassigned_character'],
    ['/%EF%BF%BF', 'unassigned_character'],
    ['/admin./x', 'segment_edge'],
    ['/admin%2e/x', 'segment_edge'],
    ['/admin%20/x', 'segment_edge'],
    ['/%20admin/x', 'segment_edge'],
    ['/...', 'segment_edge'],
    ['/admin\u1680/x', 'segment_edge'],
    ['/public/..%CC%81/admin', 'segment_edge'],
    ['/a/%CC%81/b', 'segment_edge'],
    ['/admin::$INDEX_ALLOCATION/x', 'ntfs_stream'],
    ['/admin%3A%24i30%3A%24INDEX_ALLOCATION/x', 'ntfs_stream'],
    ['/..', 'above_root'],
    ['/a/../../b', 'above_root'],
    ['/%2e%2e/x', 'above_root'],
  ])('%j: %s', (raw, reason) => {
    const c = canonicalizePath(raw)
    expect(c).toMatchObject({ kind: 'refused', reason })
    if (c.kind === 'refused') expect(c.message.length).toBeGreaterThan(0)
  })
})

describe('segment parameters, when allowed', () => {
  it('keeps them in the path and removes them from what rules match', () => {
    expect(canonical('/admin;x=1/panel', true)).toEqual({
      kind: 'canonical',
      path: '/admin;x=1/panel',
      matchPath: '/admin/panel',
    })
    expect(canonical('/a;b=c;d/e;', true)).toMatchObject({ path: '/a;b=c;d/e;', matchPath: '/a/e' })
  })

  it.each(['/..;/x', '/public/..;x=1/admin', '/.;x/y', '/;x/admin', '/a//;x'])(
    'refuses them on empty and dot segments: %j',
    (raw) => {
      expect(canonicalizePath(raw, { allowParameters: true })).toMatchObject({
        kind: 'refused',
        reason: 'parameters',
      })
    }
  )

  it('still refuses an escaped ; (a decoding origin strips what the gate kept)', () => {
    expect(canonicalizePath('/admin%3Bx/panel', { allowParameters: true })).toMatchObject({
      kind: 'refused',
      reason: 'encoded_delimiter',
    })
  })
})

/** Inputs for the properties: hostile spellings, web paths, and anything at all. */
const anyPath = fc.oneof(
  hostilePath,
  hostilePath.map(whatwgPath),
  fc.webPath(),
  fc.string({ unit: 'binary' }).map((s) => `/${s}`),
  fc.string({ unit: fc.constantFrom('/', '.', '%', '2', 'e', 'E', 'F', 'f', '5', 'C', ';', 'a') })
)
const RUNS = { numRuns: 3000 }

describe('properties', () => {
  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), (s, allowParameters) => {
        const c = canonicalizePath(s, { allowParameters })
        expect(['canonical', 'refused']).toContain(c.kind)
      }),
      RUNS
    )
  })

  it('is idempotent', () => {
    fc.assert(
      fc.property(anyPath, fc.boolean(), (raw, allowParameters) => {
        const once = canonicalizePath(raw, { allowParameters })
        if (once.kind === 'refused') return
        expect(canonicalizePath(once.path, { allowParameters })).toEqual(once)
      }),
      RUNS
    )
  })

  it('never outputs //, dot segments, \\, escaped unreserved, %2F, %5C, controls or lower-case hex', () => {
    fc.assert(
      fc.property(anyPath, fc.boolean(), (raw, allowParameters) => {
        const c = canonicalizePath(raw, { allowParameters })
        if (c.kind === 'refused') return
        const { path } = c
        expect(path.startsWith('/')).toBe(true)
        expect(path).not.toContain('//')
        expect(path).not.toContain('\\')
        for (const seg of path.split('/').slice(1)) expect(['.', '..']).not.toContain(seg)
        expect(path).not.toMatch(/%(2F|5C)/i)
        expect(path).not.toMatch(/[\p{Cc}]/u)
        for (const [, hex] of path.matchAll(/%(..)/g)) {
          expect(hex).toMatch(/^[0-9A-F]{2}$/)
          const byte = Number.parseInt(hex as string, 16)
          expect(String.fromCharCode(byte)).not.toMatch(/^[A-Za-z0-9._~-]$/)
          expect(byte < 0x20 || byte === 0x7f).toBe(false)
        }
        expect(decodeURIComponent(path)).not.toMatch(/\p{Cc}/u)
      }),
      RUNS
    )
  })

  it('is read the same by a strict origin (decode once) and the most lenient one', () => {
    fc.assert(
      fc.property(anyPath, fc.boolean(), (raw, allowParameters) => {
        const c = canonicalizePath(raw, { allowParameters })
        if (c.kind === 'refused') return
        const once = strictRead(c.path, allowParameters)
        const lenient = lenientRead(c.path)
        // The lenient reader also drops a trailing slash; nothing else may differ.
        expect(lenient).toBe(lenientFold(once).replace(/(.)\/$/, '$1'))
        expect(strictRead(c.path, true).normalize('NFC')).toBe(c.matchPath)
      }),
      RUNS
    )
  })

  it('survives a WHATWG URL parser unchanged, and agrees with it where both accept', () => {
    fc.assert(
      fc.property(anyPath, (raw) => {
        const c = canonicalizePath(raw)
        if (c.kind === 'refused') return
        expect(whatwgPath(c.path)).toBe(c.path)
        const target = new URL('https://origin.test/')
        target.pathname = c.path
        expect(target.pathname).toBe(c.path)
        const parsed = canonicalizePath(whatwgPath(raw))
        if (parsed.kind === 'canonical') expect(parsed.path).toBe(c.path)
      }),
      RUNS
    )
  })

  it('takes its shortcut only where the full reading gives the same answer', () => {
    // Plain-looking paths near the shortcut's edges: dots, colons, dollars, slashes.
    const plainish = fc.string({
      unit: fc.constantFrom('/', '.', ':', '$', 'a', 'Z', '0', '-', '~', '@', '!', ';', '%', ' '),
    })
    fc.assert(
      fc.property(fc.oneof(anyPath, plainish), fc.boolean(), (raw, allowParameters) => {
        expect(canonicalizePath(raw, { allowParameters })).toEqual(
          canonicalizeSegments(raw, { allowParameters })
        )
      }),
      RUNS
    )
  })

  it('folds printable ASCII by lower-casing, as the full folding does', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), anyPath), (s) => {
        expect(foldForMatch(s)).toBe(foldUnicode(s))
      }),
      RUNS
    )
  })

  it('splits a serialised URL into the path and query URL gives', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.webUrl({ withQueryParameters: true, withFragments: false }),
          fc.webUrl({ authoritySettings: { withUserInfo: true, withPort: true, withIPv6: true } })
        ),
        fc.oneof(anyPath, fc.string()),
        fc.string(),
        (base, path, query) => {
          for (const raw of [base, `${base}${path}`, `${base}${path}?${query}`]) {
            let u: URL
            try {
              u = new URL(raw)
            } catch {
              continue
            }
            if (u.protocol !== 'http:' && u.protocol !== 'https:') continue
            u.hash = ''
            expect(pathAndQuery(u.href)).toEqual({ pathname: u.pathname, search: u.search })
          }
        }
      ),
      RUNS
    )
  })
})
