/**
 * Route rules: per path pattern, public, any authenticated user, or members of groups.
 * Patterns are exact paths or prefixes ending in `*`; the first matching rule wins.
 */
export type RouteAccess = { access: 'public' } | { access: 'authenticated' } | { groups: string[] }
export type RouteRule = { path: string } & RouteAccess

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
    if (typeof rule.path !== 'string' || !rule.path.startsWith('/')) {
      throw new Error(`${where}.path must be a path starting with /`)
    }
    if (Array.isArray(rule.groups)) {
      if (!rule.groups.every((g) => typeof g === 'string')) {
        throw new Error(`${where}.groups must be strings`)
      }
      return { path: rule.path, groups: rule.groups as string[] }
    }
    if (rule.access === 'public' || rule.access === 'authenticated') {
      return { path: rule.path, access: rule.access }
    }
    throw new Error(`${where} needs access: "public" | "authenticated", or groups: [...]`)
  })
}

/** The rule for a path; paths no rule matches require authentication. */
export function matchRoute(rules: RouteRule[], path: string): RouteRule {
  for (const rule of rules) {
    if (rule.path.endsWith('*')) {
      const prefix = rule.path.slice(0, -1)
      // "/admin/*" also covers "/admin" itself.
      if (path.startsWith(prefix) || (prefix.endsWith('/') && path === prefix.slice(0, -1)))
        return rule
    } else if (path === rule.path) {
      return rule
    }
  }
  return { path: '*', access: 'authenticated' }
}

export function isAllowed(rule: RouteRule, groups: string[]): boolean {
  return 'groups' in rule ? rule.groups.some((g) => groups.includes(g)) : true
}
