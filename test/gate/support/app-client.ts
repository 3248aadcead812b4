/**
 * A Digest client talking to a Hono app in the same process (the npm package's forms), from one
 * client address (`X-Real-IP`, what the default clientIp reads), recording each Authorization it
 * sent. No Workers imports: used by workerd and Node tests alike.
 */
import type { Hono } from 'hono'
import { createDigestClient } from '../../../src/digest/client.ts'

export function clientOf(a: Hono, username: string, password: string, ip = '198.51.100.1') {
  const sent: string[] = []
  const client = createDigestClient({
    username,
    password,
    fetch: async (input, init) => {
      const req = new Request(input as RequestInfo, init)
      req.headers.set('x-real-ip', ip)
      const authorization = req.headers.get('authorization')
      if (authorization) sent.push(authorization)
      return a.request(req)
    },
  })
  return { fetch: (path: string) => client.fetch(`https://app.test${path}`), sent }
}
