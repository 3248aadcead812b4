/**
 * What every bench worker does after its (optional) check: forward the request to the origin the
 * way the gate does (drop Authorization, add X-Forwarded-*, rewrap the response), so that the rows
 * differ only in the check.
 */
export async function forwardToOrigin(request: Request, origin: string): Promise<Response> {
  const incoming = new URL(request.url)
  const target = new URL(incoming.pathname + incoming.search, origin)
  const headers = new Headers(request.headers)
  headers.delete('authorization')
  headers.set('x-forwarded-host', incoming.host)
  headers.set('x-forwarded-proto', incoming.protocol.replace(':', ''))
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
  const res = await fetch(target, {
    method: request.method,
    headers,
    body: hasBody ? request.body : undefined,
    redirect: 'manual',
  })
  return new Response(res.body, res)
}

export interface BenchEnv {
  ORIGIN_URL: string
}
