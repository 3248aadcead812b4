/**
 * The demo origin checks the gate's identity assertion as any origin can: with the gate's public
 * keys alone (GET <GATE_URL>/.digest-gate/jwks.json), holding no secret that could mint one. The
 * key set is kept per isolate for its max-age and fetched again for a kid it lacks (a rotation),
 * at most once per cooldown, so that a burst of bad tokens cannot make it hammer the gate.
 */
import { decode, verifyWithJwks } from 'hono/jwt'
import type { AssertionCheck, AssertionClaims } from './echo.ts'

type Jwk = NonNullable<Parameters<typeof verifyWithJwks>[1]['keys']>[number]

const JWKS_PATH = '/.digest-gate/jwks.json'
const DEFAULT_MAX_AGE_SECONDS = 300
const REFETCH_COOLDOWN_MS = 5_000

let cached: { url: string; keys: Jwk[]; until: number } | undefined
let lastFetch: { url: string; at: number } | undefined
let inFlight: { url: string; keys: Promise<Jwk[]> } | undefined

async function fetchKeys(url: string, now: number): Promise<Jwk[]> {
  lastFetch = { url, at: now }
  const res = await fetch(url, { headers: { accept: 'application/json' } })
  if (!res.ok) throw new Error(`the gate's key set answered ${res.status}`)
  const body = (await res.json()) as { keys?: unknown }
  if (!Array.isArray(body.keys)) throw new Error(`the gate's key set has no "keys"`)
  const maxAge = /max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1]
  const seconds = maxAge === undefined ? DEFAULT_MAX_AGE_SECONDS : Number(maxAge)
  cached = { url, keys: body.keys as Jwk[], until: now + seconds * 1000 }
  return cached.keys
}

/** The gate's keys, fresh enough and naming `kid` if a fetch within the cooldown allows. */
async function keysFor(url: string, kid: string | undefined, now: number): Promise<Jwk[]> {
  const keys = cached?.url === url ? cached.keys : undefined
  if (keys && cached && now < cached.until && keys.some((k) => k.kid === kid)) return keys
  const cooling = lastFetch?.url === url && now - lastFetch.at < REFETCH_COOLDOWN_MS
  if (inFlight?.url === url) return inFlight.keys
  if (cooling) {
    if (keys) return keys
    throw new Error(`the gate's key set is unavailable; retrying within seconds`)
  }
  const fetching = { url, keys: fetchKeys(url, now) }
  inFlight = fetching
  fetching.keys
    .finally(() => {
      if (inFlight === fetching) inFlight = undefined
    })
    .catch(() => {})
  return fetching.keys
}

/** The assertion's verdict, or null when none arrived (a public route). */
export async function checkAssertion(
  token: string | null,
  o: { gateUrl: string | undefined; audience: string }
): Promise<AssertionCheck | null> {
  if (token === null) return null
  if (!o.gateUrl)
    return { verified: false, error: 'GATE_URL is not set: no key set to verify with' }
  try {
    const keys = await keysFor(
      new URL(JWKS_PATH, o.gateUrl).href,
      decode(token).header.kid,
      Date.now()
    )
    const claims = await verifyWithJwks(token, {
      keys,
      allowedAlgorithms: ['ES256', 'EdDSA'],
      verification: { aud: o.audience },
    })
    return { verified: true, claims: claims as unknown as AssertionClaims }
  } catch (err) {
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    return { verified: false, error: error.slice(0, 200) }
  }
}
