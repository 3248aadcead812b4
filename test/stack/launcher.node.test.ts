/**
 * The launcher behind npm start, npm run serve, the end-to-end suite and the bench
 * (scripts/stack/launcher.ts): a program counts as started once it answers HTTP, restarts on the
 * same port as a new process, and stops; one that dies first fails the start with its output.
 * And the workerd configuration it writes keeps `wrangler dev`'s storage layout and keys, so that
 * a gate keeps its security contexts whichever way it runs.
 */
import { describe, expect, it } from 'vitest'
import { launch, structuredLogText } from '../../scripts/stack/launcher.ts'
import { CONFIGS, DEMO_ROUTES, LOCAL_SERVER_ID } from '../../scripts/stack/paths.ts'
import { freePort } from '../../scripts/stack/ports.ts'
import { stackWorkers } from '../../scripts/stack/stack.ts'
import { DEFAULT_V8_FLAGS, workerdConfig } from '../../scripts/stack/workerd-config.ts'

/** A tiny HTTP server: answers its pid, says when it listens. */
const SERVER = `
const port = Number(process.argv[1])
require('node:http')
  .createServer((_, res) => res.end(String(process.pid)))
  .listen(port, '127.0.0.1', () => console.log('listening on ' + port))
`

describe('launch', () => {
  it('starts once it answers, restarts as a new process on the same port, and stops', async () => {
    const port = await freePort()
    const lines: string[] = []
    const server = await launch(
      'tiny',
      [`http://127.0.0.1:${port}/`],
      () => ({ command: process.execPath, args: ['-e', SERVER, String(port)] }),
      { onLine: (line) => lines.push(line) }
    )
    try {
      const first = server.process().pid
      expect(await (await fetch(server.url)).text()).toBe(String(first))
      await server.restart()
      const second = server.process().pid
      expect(second).not.toBe(first)
      expect(await (await fetch(server.url)).text()).toBe(String(second))
      expect(lines).toEqual([`listening on ${port}`, `listening on ${port}`])
    } finally {
      await server.stop()
    }
    expect(server.process().running()).toBe(false)
    await expect(fetch(server.url)).rejects.toThrow()
  })

  it('fails the start of a program that exits first, with what it said', async () => {
    const port = await freePort()
    const start = launch('broken', [`http://127.0.0.1:${port}/`], () => ({
      command: process.execPath,
      args: ['-e', 'console.error("no configuration here"); process.exit(3)'],
    }))
    await expect(start).rejects.toThrow(
      /broken exited before answering[\s\S]*no configuration here/
    )
  })
})

describe('workerd configuration', () => {
  it("stores the gate's Durable Objects in wrangler dev's layout, under wrangler dev's keys", () => {
    const text = workerdConfig(
      [
        {
          service: 'gate',
          config: CONFIGS.gate,
          script: '/run/bundles/gate/index.js',
          port: 18787,
          vars: { NONCE_KEY: 'a"b\\c', REPLAY_MODE: 'off' },
          durableObjectsDir: '/state/v3/do',
        },
      ],
      '/run'
    )
    for (const className of ['SecurityContext', 'UserContexts', 'Brake']) {
      expect(text).toContain(
        `(className = "${className}", uniqueKey = "digest-gate-${className}", enableSql = true)`
      )
    }
    expect(text).toContain('disk = (path = "/state/v3/do", writable = true)')
    expect(text).toContain('esModule = embed "bundles/gate/index.js"')
    expect(text).toContain('(name = "NONCE_KEY", text = "a\\"b\\\\c")')
    // An override replaces the config's value; the config's other vars stay.
    expect(text).toContain('(name = "REPLAY_MODE", text = "off")')
    expect(text).not.toContain('(name = "REPLAY_MODE", text = "window")')
    expect(text).toContain('(name = "REALM", text = "digest-gate")')
    // A self-hosted gate releases quiet contexts (workerd keeps an evicted object's memory).
    expect(text).toContain('(name = "CONTEXT_RELEASE_AFTER", text = "2")')
    expect(text).toContain('address = "127.0.0.1:18787"')
  })

  it('refuses a worker with Durable Objects but no directory, and one with KV', () => {
    const gate = { service: 'gate', config: CONFIGS.gate, script: '/b.js', port: 1, vars: {} }
    expect(() => workerdConfig([gate], '/')).toThrow(/Durable Objects need a directory/)
    const authority = { ...gate, service: 'authority', config: CONFIGS.authority }
    expect(() => workerdConfig([authority], '/')).toThrow(/KV bindings need Miniflare/)
  })

  it("caps V8's young generation unless told otherwise", () => {
    const origin = { service: 'origin', config: CONFIGS.origin, script: '/o.js', port: 1, vars: {} }
    expect(DEFAULT_V8_FLAGS).toEqual(['--max-semi-space-size=8'])
    expect(workerdConfig([origin], '/')).toContain('v8Flags = ["--max-semi-space-size=8"],')
    expect(workerdConfig([origin], '/', { v8Flags: ['--a', '--b=1'] })).toContain(
      'v8Flags = ["--a", "--b=1"],'
    )
    expect(workerdConfig([origin], '/', { v8Flags: [] })).toContain('v8Flags = [],')
  })

  it("turns workerd's structured log lines into their messages", () => {
    const decision = '{"event":"digest-gate.decision","outcome":"verified_at_edge"}'
    const line = (level: string, message: string) =>
      JSON.stringify({ timestamp: 1, level, message })
    expect(structuredLogText(line('log', decision))).toBe(decision)
    expect(structuredLogText(line('error', 'boom'))).toBe('error: boom')
    expect(structuredLogText('workerd/server: plain text')).toBe('workerd/server: plain text')
    expect(structuredLogText('{not json')).toBe('{not json')
  })
})

describe('the local stack’s gate', () => {
  it('gets its own realm, server id, routes and ports, whatever wrangler.toml says', () => {
    const plan = {
      ports: { gate: 18787, authority: 18788, origin: 18789 },
      persistTo: '/tmp/state',
      secrets: { gate: '/tmp/gate.env', authority: '/tmp/authority.env' },
    }
    const { gate } = stackWorkers(plan)
    expect(gate.vars).toMatchObject({
      REALM: 'digest-gate',
      SERVER_ID: LOCAL_SERVER_ID,
      ORIGIN_URL: 'http://127.0.0.1:18789',
      AUTHORITY_URL: 'http://127.0.0.1:18788/v1/verify',
    })
    expect(JSON.parse(gate.vars?.ROUTES ?? '')).toEqual(JSON.parse(DEMO_ROUTES))
  })
})
