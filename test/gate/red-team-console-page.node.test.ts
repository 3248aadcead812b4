/**
 * The console's page script run against hostile API answers, under Node with a minimal DOM of its
 * own (workerd refuses to compile code from strings): every value a client chose must land as
 * text, never as markup, and every session must be listed whatever its user is called.
 */
import { describe, expect, it } from 'vitest'
import type { ListedSession } from '../../src/gate/console/index-object.ts'
import { consoleScript } from '../../src/gate/console/page.ts'

/** An element of the stub DOM: text, attributes and children; markup sinks throw. */
class Element {
  readonly children: Element[] = []
  readonly attributes = new Map<string, string>()
  textContent = ''
  className = ''
  hidden = false
  type = ''
  title = ''
  colSpan = 1
  readonly listeners = new Map<string, () => void>()
  readonly tag: string
  constructor(tag: string) {
    this.tag = tag
  }
  set innerHTML(_: string) {
    throw new Error('innerHTML used')
  }
  set outerHTML(_: string) {
    throw new Error('outerHTML used')
  }
  insertAdjacentHTML(): never {
    throw new Error('insertAdjacentHTML used')
  }
  appendChild(child: Element): Element {
    this.children.push(child)
    return child
  }
  removeChild(child: Element): Element {
    this.children.splice(this.children.indexOf(child), 1)
    return child
  }
  replaceChildren(): void {
    this.children.length = 0
  }
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, String(value))
  }
  addEventListener(type: string, listener: () => void): void {
    this.listeners.set(type, listener)
  }
  querySelectorAll(tag: string): Element[] {
    return this.children.filter((c) => c.tag === tag)
  }
  get tBodies(): Element[] {
    return this.querySelectorAll('tbody')
  }
  /** Every element below, depth first. */
  all(): Element[] {
    return this.children.flatMap((c) => [c, ...c.all()])
  }
}

const IDS = [
  'viewer',
  'refresh',
  'status',
  'sessions',
  'sessions-count',
  'sessions-empty',
  'brakes',
  'brakes-count',
  'brakes-empty',
  'refusals',
  'refusals-count',
  'refusals-empty',
]

/** Run the page's script once against these API answers; the rendered elements by id. */
async function render(answers: Record<string, unknown>): Promise<Map<string, Element>> {
  const byId = new Map(IDS.map((id) => [id, new Element(id)]))
  for (const table of ['brakes', 'refusals']) byId.get(table)?.appendChild(new Element('tbody'))
  const body = new Element('body')
  const document = {
    body,
    getElementById: (id: string) => byId.get(id),
    createElement: (tag: string) => new Element(tag),
  }
  const window = { setInterval: () => 0, confirm: () => true }
  const fetch = async (url: string) => {
    const path = url.slice('/.digest-gate/api'.length)
    return { ok: true, status: 200, json: async () => answers[path] }
  }
  new Function('document', 'window', 'fetch', consoleScript('/.digest-gate/api', 'X-Test'))(
    document,
    window,
    fetch
  )
  // The first refresh: three fetches, then the rendering.
  for (let i = 0; i < 20 && !body.attributes.has('data-loaded'); i++) {
    await new Promise((r) => setTimeout(r, 0))
  }
  expect(byId.get('status')?.textContent).toBe('')
  return byId
}

const NOW = 1_800_000_000

function session(user: string, handle: string, extra: Partial<ListedSession> = {}): ListedSession {
  return {
    handle,
    user,
    groups: [],
    algorithm: 'SHA-256',
    created: NOW - 60,
    lastUsed: NOW - 10,
    expires: NOW + 3600,
    idleTimeout: 900,
    requests: 3,
    address: '192.0.2.1',
    userAgent: 'curl/8',
    ...extra,
  }
}

const handle = (n: number) => `handle-${String(n).padStart(15, '0')}`

describe('the console page script', () => {
  it('lists every session of a user named like an Object.prototype member', async () => {
    const users = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'alice']
    const sessions = users.flatMap((user, i) => [
      session(user, handle(2 * i)),
      session(user, handle(2 * i + 1)),
    ])
    const byId = await render({
      '/sessions': { now: NOW, realm: 'r', viewer: 'alice', sessions, total: sessions.length },
      '/brakes': { now: NOW, brakes: [] },
      '/refusals': { now: NOW, refusals: [] },
    })
    const table = byId.get('sessions') as Element
    const groups = table.querySelectorAll('tbody').map((b) => b.attributes.get('data-user'))
    expect(groups).toEqual(users)
    const listed = table
      .all()
      .filter((e) => e.tag === 'tr' && e.attributes.has('data-handle'))
      .map((e) => e.attributes.get('data-handle'))
    expect(listed.sort()).toEqual(sessions.map((s) => s.handle).sort())
    expect(byId.get('sessions-count')?.textContent).toBe('(10)')
  })

  it('renders hostile values as text only, each where it belongs', async () => {
    const markup = '<img src=x onerror=alert(1)>'
    const byId = await render({
      '/sessions': {
        now: NOW,
        realm: markup,
        viewer: markup,
        sessions: [
          session(markup, handle(1), { groups: [markup], address: markup, userAgent: markup }),
        ],
        total: 1,
      },
      '/brakes': {
        now: NOW,
        brakes: [{ address: markup, user: markup, reason: markup, since: NOW, until: NOW + 60 }],
      },
      '/refusals': {
        now: NOW,
        refusals: [
          {
            at: NOW * 1000,
            user: markup,
            address: markup,
            method: 'GET',
            path: markup,
            reason: markup,
            status: 401,
          },
        ],
      },
    })
    const texts = [...byId.values()].flatMap((e) => [e, ...e.all()]).map((e) => e.textContent)
    // The session's groups, address and agent; the brake's address, user and reason; the
    // refusal's user, address and reason; and the request line with its path.
    expect(texts.filter((t) => t === markup).length).toBeGreaterThanOrEqual(10)
    expect(texts).toContain(`GET ${markup}`)
    expect(byId.get('viewer')?.textContent).toBe(`Signed in as ${markup} · realm ${markup}`)
  })
})
