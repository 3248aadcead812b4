/**
 * The demo origin's WebSocket echo, on any path: every text message comes back as JSON text with
 * the identity the gate forwarded on the handshake, `{"user":"alice","echo":"…"}` (`user` null on a
 * public route), so tests and people see that the socket is the user's.
 */

const USER_HEADER = 'x-auth-user'
/** RFC 6455 §7.4.1: the endpoint cannot accept this type of data. */
const UNSUPPORTED_DATA = 1003

/** A WebSocket opening handshake: the request this module answers. */
export function isWebSocketHandshake(request: Request): boolean {
  return request.headers.get('upgrade')?.trim().toLowerCase() === 'websocket'
}

/** Accepts the socket (101) and echoes on it; the first subprotocol offered, if any, is chosen. */
export function acceptEchoSocket(request: Request): Response {
  const user = request.headers.get(USER_HEADER)
  const { 0: client, 1: server } = new WebSocketPair()
  server.accept()
  server.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') {
      server.close(UNSUPPORTED_DATA, 'text messages only')
      return
    }
    server.send(JSON.stringify({ user, echo: event.data }))
  })
  const protocol = request.headers.get('sec-websocket-protocol')?.split(',')[0]?.trim()
  return new Response(null, {
    status: 101,
    webSocket: client,
    headers: protocol ? { 'sec-websocket-protocol': protocol } : {},
  })
}
