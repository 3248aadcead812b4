/** A minimal client of V8's inspector protocol (a workerd process's `--inspector-addr`). */
export class Inspector {
  private next = 1
  private readonly pending = new Map<number, (result: unknown) => void>()
  private readonly socket: WebSocket
  private constructor(socket: WebSocket) {
    this.socket = socket
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown }
      if (message.id !== undefined) this.pending.get(message.id)?.(message.result)
    })
  }

  static async open(url: string): Promise<Inspector> {
    const socket = new WebSocket(url)
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve, { once: true })
      socket.addEventListener('error', reject, { once: true })
    })
    return new Inspector(socket)
  }

  /** The target named `service` (workerd lists one per worker) of the inspector on `port`. */
  static async target(port: number, service: string): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as {
      title?: string
      id?: string
      webSocketDebuggerUrl?: string
    }[]
    const target = targets.find((t) => t.id === service || t.title === service) ?? targets[0]
    if (!target?.webSocketDebuggerUrl) throw new Error('no inspector target')
    return Inspector.open(target.webSocketDebuggerUrl)
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++
    this.socket.send(JSON.stringify({ id, method, params }))
    return new Promise((resolve) => this.pending.set(id, resolve as (r: unknown) => void))
  }

  close(): void {
    this.socket.close()
  }
}
