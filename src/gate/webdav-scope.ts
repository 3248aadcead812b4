/**
 * What a request acts on beyond its own path, as the route rules must see it. WebDAV (RFC 4918)
 * COPY and MOVE write to the path their Destination names, and DELETE, MOVE, COPY, LOCK and
 * PROPFIND act on every member of a collection unless their Depth says otherwise. Rules that saw
 * the request path alone would let an anonymous COPY from a public path write into a protected
 * one, or a user delete a collection that holds another group's files.
 */
import { canonicalizePath } from './request-path.ts'
import { matchRoute, type RouteRule, rulesUnder } from './routes.ts'

export type WebdavScope =
  | {
      kind: 'scope'
      /** The rules a request must also satisfy, beside its own path's. */
      rules: RouteRule[]
      /** The Destination to forward: the same URI, its path canonical (what the rules saw). */
      destination?: string
    }
  | { kind: 'refused'; reason: string; message: string }

/** Collection methods that act on every member whatever Depth says (RFC 4918 §9.6.1, §9.9.2). */
const ALWAYS_DEEP = new Set(['DELETE', 'MOVE'])
/** Collection methods whose Depth 0 (PROPFIND: also 1) stops at the collection itself. */
const DEPTH_DECIDES = new Set(['COPY', 'LOCK', 'PROPFIND'])

export interface ScopedRequest {
  method: string
  /** The request URL, against which a relative Destination resolves. */
  url: string
  /** The request path's `CanonicalPath.matchPath`. */
  matchPath: string
  /** A request header's value (only Destination and Depth are read, Depth only when it counts). */
  header: (name: 'destination' | 'depth') => string | undefined
}

export function webdavScope(
  routes: RouteRule[],
  req: ScopedRequest,
  allowParameters: boolean
): WebdavScope {
  const deep = actsDeep(req.method, req.header)
  const rules = deep ? rulesUnder(routes, req.matchPath) : []
  const destination = req.header('destination')
  if (destination === undefined) return { kind: 'scope', rules }
  let url: URL
  try {
    url = new URL(destination.trim(), req.url)
  } catch {
    return refused('destination_malformed', 'the Destination header is not a URI')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return refused('destination_malformed', 'the Destination header is not an http(s) URI')
  }
  const canonical = canonicalizePath(url.pathname, { allowParameters })
  if (canonical.kind === 'refused') {
    return refused(`destination_${canonical.reason}`, `Destination refused: ${canonical.message}`)
  }
  rules.push(matchRoute(routes, canonical.matchPath))
  // What lies under the destination is replaced (Overwrite) or written into.
  if (deep) rules.push(...rulesUnder(routes, canonical.matchPath))
  return {
    kind: 'scope',
    rules,
    destination: `${url.protocol}//${url.host}${canonical.path}${url.search}`,
  }
}

function actsDeep(requestMethod: string, header: ScopedRequest['header']): boolean {
  // Methods are case-sensitive, but an origin that upper-cases them must not get past the rules.
  const method = requestMethod.toUpperCase()
  if (ALWAYS_DEEP.has(method)) return true
  if (!DEPTH_DECIDES.has(method)) return false
  const d = header('depth')?.trim().toLowerCase()
  return d !== '0' && d !== '1'
}

function refused(reason: string, message: string): WebdavScope {
  return { kind: 'refused', reason, message }
}
