/**
 * Does the `uri` directive name the request target (RFC 7616 §3.4.6)? Accepts the origin-form
 * and the absolute-form (old Android, erratum 7005). Paths are compared canonical
 * (request-path.ts) and then percent-decoded, queries percent-decoded, because clients differ in
 * which characters they escape and whether they resolve dot segments.
 */
import { canonicalizePath } from './request-path.ts'

/** `target.path` is the canonical request path, `target.search` the query as received. */
export function uriMatchesTarget(
  directive: string,
  target: { path: string; search: string }
): boolean {
  if (directive === target.path + target.search) return true
  let candidate = directive
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(candidate)) {
    try {
      const u = new URL(candidate)
      candidate = u.pathname + u.search
    } catch {
      return false
    }
  }
  const q = candidate.indexOf('?')
  const path = q === -1 ? candidate : candidate.slice(0, q)
  const query = q === -1 ? '' : candidate.slice(q)
  // Parameters are compared, not refused: which paths may carry them is the router's decision.
  const mine = canonicalizePath(path, { allowParameters: true })
  if (!mine.ok) return false
  return (
    decodeSafely(mine.path) === decodeSafely(target.path) &&
    decodeSafely(query) === decodeSafely(target.search)
  )
}

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}
