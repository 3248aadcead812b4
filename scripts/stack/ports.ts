/** TCP port helpers for the local stack: free ports for tests, a clear error for taken ones. */
import { createServer } from 'node:net'

/** Resolves true when nothing listens on 127.0.0.1:`port`. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/**
 * Ports for test stacks come from below the kernel's ephemeral range (Linux: 32768-60999): a port
 * the kernel handed out as free would be handed out again to the next `listen(0)`, and each
 * `wrangler dev` opens several such sockets while the stack starts.
 */
const TEST_PORT_MIN = 20000
const TEST_PORT_MAX = 32000

/** A free port below the ephemeral range (racy only against other test runs). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = TEST_PORT_MIN + Math.floor(Math.random() * (TEST_PORT_MAX - TEST_PORT_MIN))
    if (await portIsFree(port, host)) return port
  }
  throw new Error(`no free port in ${TEST_PORT_MIN}-${TEST_PORT_MAX}`)
}

/** Distinct free ports (kept distinct even if the kernel repeats one). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

export async function assertPortsFree(ports: Record<string, number>): Promise<void> {
  for (const [name, port] of Object.entries(ports)) {
    if (!(await portIsFree(port))) {
      throw new Error(`port ${port} (${name}) is already in use on 127.0.0.1; is a stack running?`)
    }
  }
}
