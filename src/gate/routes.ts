/**
 * Route rules: per path pattern, public, any authenticated user, or members of groups.
 * Patterns are canonical paths (request-path.ts), exact or prefixes ending in `*`, matched against
 * the canonical request path; the first matching rule wins.
 *
 * Matching fails closed in both directions, because the gate cannot know how the origin spells:
 * a rule that protects (authenticated, groups) matches every spelling an origin may read as its
 * path (case and accents folded, an exact rule also with a trailing slash); a public rule matches
 * its own spelling only. `caseSensitive` overrides either default per rule. `preflight: false`
 * makes a protected rule challenge CORS preflights too (by default they pass to the origin).
 */
import { canonicalizePath, foldForMatch } from './request-path.ts'

export type RouteAccess = { access: 'public' } | { access: 'authenticated' } | { groups: string[] }
export type RouteRule = { path: string; caseSensitive?: boolean; preflight?: boolean } & RouteAccess

export function parseRoutes(json: string | undefined): RouteRule[] {
  if (json === undefined || json.trim() === '') {
    return [{ path: '/*', access: 'authenticated' }]
  }
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    throw new Error('ROUTES is not valid JSON')
  }
  if (!Array.isArray(raw)) throw new Error('ROUTES must be a JSON array of rules')
  return raw.map((r, i) => {
    const where = `ROUTES[${i}]`
    if (typeof r !== 'object' || r === null) throw new Error(`${where} must be an object`)
    const rule = r as Record<string, unknown>
    if (typeof rule.path !== 'string') throw new Error(`${where}.path must be a string`)
    const problem = rulePathProblem(rule.path)
    if (problem) throw new Error(`${where}.path ${problem}`)
    for (const flag of ['caseSensitive', 'preflight'] as const) {
      if (rule[flag] !== undefined && typeof rule[flag] !== 'boolean') {
        throw new Error(`${where}.${flag} must be true or false`)
      }
    }
    const base: { path: string; caseSensitive?: boolean; preflight?: boolean } = { path: rule.path }
    if (rule.caseSensitive !== undefined) base.caseSensitive = rule.caseSensitive as boolean
    if (rule.preflight !== undefined) base.preflight = rule.preflight as boolean
    if (Array.isArray(rule.groups)) {
      if (!rule.groups.every((g) => typeof g === 'string')) {
        throw new Error(`${where}.groups must be strings`)
      }
      return { ...base, groups: rule.groups as string[] }
    }
    if (rule.access === 'public' || rule.access === 'authenticated') {
      return { ...base, access: rule.access }
    }
    throw new Error(`${where} needs access: "public" | "authenticated", or groups: [...]`)
  })
}

/** Why a rule path is unusable: it must be a canonical path, optionally ending in `*`. */
function rulePathProblem(path: string): string | undefined {
  const base = path.endsWith('*') ? path.slice(0, -1) : path
  if (!base.startsWith('/')) return 'must be a path starting with /'
  if (base.includes('*')) return 'may hold * only at its end'
  const canonical = canonicalizePath(base)
  if (canonical.kind === 'refused') return `is not a usable path: ${canonical.message}`
  if (canonical.path !== base) {
    return `must be canonical: write ${JSON.stringify(canonical.path + path.slice(base.length))}`
  }
  return undefined
}

/**
 * The rule for a request; paths no rule matches require authentication.
 * @param matchPath - the request's `CanonicalPath.matchPath`
 */
export function matchRoute(rules: RouteRule[], matchPath: string): RouteRule {
  const folded = foldForMatch(matchPath)
  for (const rule of rules) {
    const m = compiled(rule)
    if (m.matches(m.fold ? folded : matchPath)) return rule
  }
  return UNMATCHED
}

export function isAllowed(rule: RouteRule, groups: string[]): boolean {
  return 'groups' in rule ? rule.groups.some((g) => groups.includes(g)) : true
}

export function isPublic(rule: RouteRule): boolean {
  return 'access' in rule && rule.access === 'public'
}

/** The rule of paths no rule matches. */
const UNMATCHED: RouteRule = { path: '*', access: 'authenticated' }

/**
 * The rules of the paths under `matchPath` (a canonical `matchPath`), for a method that acts on a
 * whole collection (WebDAV's DELETE, MOVE, COPY, LOCK, PROPFIND at Depth infinity): in order, each
 * rule that may match some path below it (whether an earlier rule takes part of those paths or
 * not: fail closed), until a prefix rule takes all of them; else the rule of unmatched paths too.
 */
export function rulesUnder(rules: RouteRule[], matchPath: string): RouteRule[] {
  const dir = (p: string) => (p.endsWith('/') ? p : `${p}/`)
  const raw = dir(matchPath)
  const folded = dir(foldForMatch(matchPath))
  const under: RouteRule[] = []
  for (const rule of rules) {
    const m = compiled(rule)
    const d = m.fold ? folded : raw
    if (m.below(d)) under.push(rule)
    // Every path below is this rule's: the rules after it match none of them first.
    if (m.covers(d)) return under
  }
  return [...under, UNMATCHED]
}

interface Matcher {
  fold: boolean
  matches: (path: string) => boolean
  /** Matches some path that starts with `dir` (a path ending in `/`). */
  below: (dir: string) => boolean
  /** Matches every path that starts with `dir`. */
  covers: (dir: string) => boolean
}

const matchers = new WeakMap<RouteRule, Matcher>()

function compiled(rule: RouteRule): Matcher {
  let m = matchers.get(rule)
  if (!m) {
    m = matcher(rule)
    matchers.set(rule, m)
  }
  return m
}

function matcher(rule: RouteRule): Matcher {
  const protects = !isPublic(rule)
  const fold = !(rule.caseSensitive ?? !protects)
  const prefix = rule.path.endsWith('*')
  const canonical = canonicalizePath(prefix ? rule.path.slice(0, -1) : rule.path)
  // parseRoutes refuses these; a rule built by hand is a programming error.
  if (canonical.kind === 'refused') throw new Error(`route rule ${rule.path}: ${canonical.message}`)
  const key = fold ? foldForMatch(canonical.matchPath) : canonical.matchPath
  if (prefix) {
    // "/admin/*" also covers "/admin" itself.
    const bare = key.endsWith('/') ? key.slice(0, -1) : undefined
    return {
      fold,
      matches: (p) => p.startsWith(key) || p === bare,
      below: (dir) => key.startsWith(dir) || dir.startsWith(key),
      covers: (dir) => dir.startsWith(key),
    }
  }
  if (!protects) {
    return { fold, matches: (p) => p === key, below: (dir) => key.startsWith(dir), covers: no }
  }
  // Express (non-strict routing) and most file servers serve "/x/" as "/x" and the reverse.
  const bare = withoutTrailingSlash(key)
  return {
    fold,
    matches: (p) => withoutTrailingSlash(p) === bare,
    below: (dir) => key.startsWith(dir) && `${bare}/` !== dir,
    covers: no,
  }
}

const no = () => false

function withoutTrailingSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
}
