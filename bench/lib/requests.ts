/**
 * The bench's requests, built before the timed phase: raw HTTP/1.1 GETs with their Authorization
 * header already computed (Digest sessions established for real, 401 -> authorized, then their
 * later requests' headers computed in nc order with the project's own client).
 */
import { createDigestClient } from '../../src/digest/client.ts'

export const BENCH_PATH = '/bench'
/** Under the gate's public route (wrangler.toml ROUTES: `/public/*`). */
export const PUBLIC_BENCH_PATH = '/public/bench'

export interface Credentials {
  username: string
  password: string
}

/** A raw GET to 127.0.0.1:`port`, keep-alive (HTTP/1.1's default). */
export function rawGet(port: number, path: string, headers: Record<string, string> = {}): string {
  let text = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`
  return `${text}\r\n`
}

export function basicAuthorization(user: Credentials): string {
  return `Basic ${Buffer.from(`${user.username}:${user.password}`, 'utf8').toString('base64')}`
}

/**
 * One established Digest session at `port`/`path` (its initial authentication done here, untimed)
 * and `count` of its later requests, nc 2, 3, … in order.
 */
export async function digestSessionRequests(
  port: number,
  path: string,
  user: Credentials,
  count: number
): Promise<string[]> {
  const url = `http://127.0.0.1:${port}${path}`
  const client = createDigestClient({ username: user.username, password: user.password })
  const first = await client.fetch(url)
  const body = await first.text()
  if (first.status !== 200) {
    throw new Error(`establishing a session at ${url}: ${first.status} ${body.slice(0, 300)}`)
  }
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const authorization = await client.authorizationFor('GET', url)
    if (authorization === undefined) throw new Error(`no challenge cached for ${url}`)
    out.push(rawGet(port, path, { Authorization: authorization }))
  }
  return out
}

/**
 * The answer to one challenge (the WWW-Authenticate value of a 401), as a browser's first
 * authenticated request: nc=1 on a fresh nonce and opaque, so the gate must ask the authority.
 */
export async function initialAuthorization(
  challenge: string,
  url: string,
  user: Credentials
): Promise<string> {
  let sent: string | undefined
  const client = createDigestClient({
    username: user.username,
    password: user.password,
    // The challenge was fetched already: replay it, and keep the answer instead of sending it.
    fetch: async (_input, init) => {
      const authorization = new Headers(init?.headers).get('authorization')
      if (authorization === null) {
        return new Response(null, { status: 401, headers: { 'www-authenticate': challenge } })
      }
      sent = authorization
      return new Response(null, { status: 204 })
    },
  })
  await client.fetch(url)
  if (sent === undefined) throw new Error('the client did not answer the challenge')
  return sent
}
