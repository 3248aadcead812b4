/**
 * After passwd/disable/remove: ask the gate to drop the user's cached security contexts (their
 * session keys stay valid at the edge until then). The gate's admin endpoint, not the authority.
 */
export interface RevokeResult {
  /** unreachable: no HTTP answer; refused: the gate answered with an error status. */
  kind: 'revoked' | 'unreachable' | 'refused'
  message: string
}

export async function revokeAtGate(
  adminUrl: string,
  token: string,
  realm: string,
  name: string
): Promise<RevokeResult> {
  const url = `${adminUrl.replace(/\/+$/, '')}/users/${encodeURIComponent(realm)}/${encodeURIComponent(name)}/revoke`
  let response: Response
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    })
  } catch (error) {
    return { kind: 'unreachable', message: `cannot reach ${url}: ${(error as Error).message}` }
  }
  const body = (await response.text()).slice(0, 500)
  return {
    kind: response.ok ? 'revoked' : 'refused',
    message: response.ok
      ? `gate revoked the contexts of ${name} (${response.status} ${body.trim()})`
      : `gate refused the revocation: ${response.status} ${body.trim()}`,
  }
}
