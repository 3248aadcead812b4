/** The shape of the demo origin's answer (no runtime code: Node tests import it too). */

/** What the demo origin answers; the e2e tests read this shape. */
export interface EchoResponse {
  origin: 'digest-gate-demo-origin'
  method: string
  path: string
  /** The raw query string without the leading `?` ('' when none). */
  query: string
  /** Every request header whose name starts with `x-auth-`, by lower-case name. */
  authHeaders: Record<string, string>
  authorizationReceived: boolean
  /** The Accept-Encoding that reached the origin (null when none), to see who negotiates. */
  acceptEncoding: string | null
  bodyLength: number
  /** Lower-case hex SHA-256 of the request body (of the empty string when there is none). */
  bodySha256: string
}
