/**
 * Does the `uri` directive name the request target (RFC 7616 §3.4.6)? Accepts the origin-form
 * and the absolute-form (old Android, erratum 7005), compared after percent-decoding, because
 * clients differ in which characters they escape.
 */
export function uriMatchesTarget(directive: string, url: URL): boolean {
  const target = url.pathname + url.search
  if (directive === target) return true
  let candidate = directive
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(candidate)) {
    try {
      const u = new URL(candidate)
      candidate = u.pathname + u.search
    } catch {
      return false
    }
  }
  return decodeSafely(candidate) === decodeSafely(target)
}

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}
