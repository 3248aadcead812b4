/** Route rules on canonical paths, the uri check on canonical paths, and the new variables. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { readConfig } from '../../src/gate/config.ts'
import { DEFAULTS } from '../../src/gate/options.ts'
import { canonicalizePath, uriMatchesTarget } from '../../src/gate/request-path.ts'
import { matchRoute, parseRoutes } from '../../src/gate/routes.ts'
import { hostilePath } from './path-spellings.ts'

/** The rule a raw request path gets, as the gate decides it. */
function ruleFor(rules: ReturnType<typeof parseRoutes>, raw: string) {
  const c = canonicalizePath(raw)
  if (c.kind === 'refused') throw new Error(`refused ${raw}`)
  return matchRoute(rules, c.matchPath)
}

describe('rule paths', () => {
  it.each([
    ['/admin//*', '"/admin/*"'],
    ['/Admin/../x', '"/x"'],
    ['/%61dmin/*', '"/admin/*"'],
    ['/caf\u00e9/*', '"/caf%C3%A9/*"'],
    ['/x/./*', '"/x/*"'],
    ['/a%2fb', 'escaped /'],
    ['/a;b/*', ' ; parameter'],
    ['/a*b/*', 'only at its end'],
    ['admin/*', 'starting with /'],
    ['/admin./*', 'ends with a dot'],
  ])('refuses %j, saying %s', (path, hint) => {
    expect(() => parseRoutes(JSON.stringify([{ path, access: 'public' }]))).toThrow(hint)
  })

  it('accepts canonical paths and caseSensitive, and refuses a caseSensitive that is no boolean', () => {
    expect(
      parseRoutes(
        '[{"path":"/caf%C3%A9/*","groups":["a"],"caseSensitive":true},{"path":"/*","access":"public"}]'
      )
    ).toEqual([
      { path: '/caf%C3%A9/*', groups: ['a'], caseSensitive: true },
      { path: '/*', access: 'public' },
    ])
    expect(() => parseRoutes('[{"path":"/x","access":"public","caseSensitive":"yes"}]')).toThrow(
      'caseSensitive'
    )
  })
})

describe('matching', () => {
  const rules = parseRoutes(
    JSON.stringify([
      { path: '/public/*', access: 'public' },
      { path: '/admin/*', groups: ['admin'] },
      { path: '/Exact', groups: ['ops'] },
      { path: '/Docs/*', access: 'public', caseSensitive: false },
      { path: '/Strict/*', groups: ['ops'], caseSensitive: true },
      { path: '/stra%C3%9Fe/*', groups: ['de'] },
      { path: '/*', access: 'authenticated' },
    ])
  )
  const [publicRule, adminRule, exactRule, docsRule, strictRule, germanRule, fallback] = rules

  it('protects every case and accent spelling of a protective rule', () => {
    for (const raw of [
      '/admin',
      '/ADMIN',
      '/Admin/x',
      '/%41dmin/x',
      '/a%CC%84dmin/x',
      '/%C4%81dmin/x',
      '/adm\u0131n/x',
    ]) {
      expect(ruleFor(rules, raw), raw).toBe(adminRule)
    }
    expect(ruleFor(rules, '/STRASSE/x')).toBe(germanRule)
    expect(ruleFor(rules, '/Stra%C3%9Fe/x')).toBe(germanRule)
  })

  it('covers an exact protective rule with and without a trailing slash', () => {
    for (const raw of ['/Exact', '/exact', '/EXACT/'])
      expect(ruleFor(rules, raw), raw).toBe(exactRule)
    expect(ruleFor(rules, '/exact/more')).toBe(fallback)
  })

  it('opens a public rule to its own spelling only, unless caseSensitive: false', () => {
    expect(ruleFor(rules, '/public/a')).toBe(publicRule)
    expect(ruleFor(rules, '/public')).toBe(publicRule)
    for (const raw of ['/Public/a', '/PUBLIC', '/p%C3%BAblic/a', '/publicity']) {
      expect(ruleFor(rules, raw), raw).toBe(fallback)
    }
    expect(ruleFor(rules, '/docs/a')).toBe(docsRule)
    expect(ruleFor(rules, '/DOCS/a')).toBe(docsRule)
  })

  it('makes a protective rule exact with caseSensitive: true', () => {
    expect(ruleFor(rules, '/Strict/a')).toBe(strictRule)
    expect(ruleFor(rules, '/strict/a')).toBe(fallback)
  })

  it('matches parameter-free paths when parameters are allowed', () => {
    const c = canonicalizePath('/ADMIN;v=1/x', { allowParameters: true })
    expect(c.kind === 'canonical' && matchRoute(rules, c.matchPath)).toBe(adminRule)
  })

  it('gives every canonical path one rule', () => {
    fc.assert(
      fc.property(hostilePath, (raw) => {
        const c = canonicalizePath(raw)
        if (c.kind === 'canonical') expect(rules).toContain(matchRoute(rules, c.matchPath))
      }),
      { numRuns: 2000 }
    )
  })
})

describe('uri check on canonical paths', () => {
  const url = (path: string) => {
    const c = canonicalizePath(path, { allowParameters: true })
    if (c.kind === 'refused') throw new Error(path)
    return { path: c.path, search: '?q=1' }
  }

  it('accepts other spellings of the same target', () => {
    expect(uriMatchesTarget('/a/../admin/x?q=1', url('/admin/x'))).toBe(true)
    expect(uriMatchesTarget('//%61dmin/x?q=1', url('/admin/x'))).toBe(true)
    expect(uriMatchesTarget('/admin/x/./?q=%31', url('/admin/x/'))).toBe(true)
    expect(uriMatchesTarget('/a:b?q=1', url('/a%3Ab'))).toBe(true)
    expect(uriMatchesTarget('https://gate.test/%7Eu/?q=1', url('/~u/'))).toBe(true)
    expect(uriMatchesTarget('/admin;x=1/p?q=1', url('/admin;x=1/p'))).toBe(true)
  })

  it('refuses other targets and spellings that cannot be canonicalised', () => {
    expect(uriMatchesTarget('/admin/y?q=1', url('/admin/x'))).toBe(false)
    expect(uriMatchesTarget('/admin/x?q=2', url('/admin/x'))).toBe(false)
    expect(uriMatchesTarget('/Admin/x?q=1', url('/admin/x'))).toBe(false)
    expect(uriMatchesTarget('/admin%2Fx?q=1', url('/admin/x'))).toBe(false)
    expect(uriMatchesTarget('/admin\\x?q=1', url('/admin/x'))).toBe(false)
    expect(uriMatchesTarget('/admin/x/?q=1', url('/admin/x'))).toBe(false)
    expect(uriMatchesTarget('/admin/p?q=1', url('/admin;x=1/p'))).toBe(false)
  })

  it('never throws on arbitrary directives', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), hostilePath), (s) => {
        expect(typeof uriMatchesTarget(s, url('/admin/x'))).toBe('boolean')
      }),
      { numRuns: 2000 }
    )
  })
})

describe('configuration', () => {
  const base = {
    REALM: 'r',
    ORIGIN_URL: 'https://origin.test',
    AUTHORITY_URL: 'https://authority.test/v1/verify',
    NONCE_KEY: 'k'.repeat(32),
    AUTHORITY_TOKEN: 't',
  }

  it('refuses ; parameters and strips the usual identity headers by default', () => {
    const c = readConfig(base, false)
    expect(c.allowPathParameters).toBe(false)
    expect(c.forward.stripHeaders).toEqual(DEFAULTS.worker.stripHeaders)
    expect(c.forward.stripHeaders).toContain('remote-user')
  })

  it('reads ALLOW_PATH_PARAMETERS and STRIP_HEADERS', () => {
    const c = readConfig(
      { ...base, ALLOW_PATH_PARAMETERS: 'true', STRIP_HEADERS: ' X-WebAuth-User , X-Email ' },
      false
    )
    expect(c.allowPathParameters).toBe(true)
    expect(c.forward.stripHeaders).toEqual(['x-webauth-user', 'x-email'])
    // Blank is unset (the default list); `none` strips nothing beyond the identity headers.
    expect(readConfig({ ...base, STRIP_HEADERS: '' }, false).forward.stripHeaders).toEqual(
      DEFAULTS.worker.stripHeaders
    )
    expect(readConfig({ ...base, STRIP_HEADERS: 'none' }, false).forward.stripHeaders).toEqual([])
  })

  it.each([
    [{ STRIP_HEADERS: 'X-Ok, bad header' }, /STRIP_HEADERS/],
    [{ ALLOW_PATH_PARAMETERS: 'sometimes' }, /ALLOW_PATH_PARAMETERS/],
    [{ ROUTES: '[{"path":"/a//b","access":"public"}]' }, /canonical/],
  ])('refuses %j', (vars, message) => {
    expect(() => readConfig({ ...base, ...vars }, false)).toThrow(message)
  })
})
