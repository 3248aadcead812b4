/** The shape of the demo origin's answer (no runtime code: Node tests import it too). */

/** The claims of the gate's identity assertion. */
export interface AssertionClaims {
  /** The gate's SERVER_ID. */
  iss: string
  /** ASSERTION_AUDIENCE, by default the origin's URL origin. */
  aud: string
  /** The user name. */
  sub: string
  groups: string[]
  realm: string
  iat: number
  exp: number
}

/** The demo origin's check of the assertion against the gate's published keys. */
export type AssertionCheck =
  | { verified: true; claims: AssertionClaims }
  | { verified: false; error: string }

/** What the demo origin answers; the e2e tests read this shape. */
export interface EchoResponse {
  origin: 'digest-gate-demo-origin'
  method: string
  path: string
  /** The raw query string without the leading `?` ('' when none). */
  query: string
  /** Every request header whose name starts with `x-auth-`, by lower-case name. */
  authHeaders: Record<string, string>
  /** The `X-Auth-Assertion` verified with the gate's JWKS alone; null when none arrived. */
  assertion: AssertionCheck | null
  authorizationReceived: boolean
  /** The Accept-Encoding that reached the origin (null when none), to see who negotiates. */
  acceptEncoding: string | null
  /** The X-Forwarded-For that reached the origin (null when none). */
  forwardedFor: string | null
  /** The WebDAV Destination that reached the origin (null when none). */
  destination: string | null
  bodyLength: number
  /** Lower-case hex SHA-256 of the request body (of the empty string when there is none). */
  bodySha256: string
}
