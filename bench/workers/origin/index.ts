/**
 * The bench's origin: one fixed JSON answer (the size of the demo origin's echo of a public
 * request), whatever arrived. The body is drained so that request bodies cost alike.
 */
const ANSWER = JSON.stringify({ origin: 'bench-origin', padding: 'x'.repeat(280) })

export default {
  async fetch(request: Request): Promise<Response> {
    if (request.body) await request.arrayBuffer()
    return new Response(ANSWER, {
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    })
  },
}
