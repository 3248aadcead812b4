import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

/**
 * The gate's test secrets and peers: the authority and origin are answered by in-test fakes
 * (test/gate/fakes.ts) through a fetch spy.
 */
const GATE_BINDINGS = {
  NONCE_KEY: 'test-nonce-key-0123456789abcdef',
  AUTHORITY_TOKEN: 'test-authority-token',
  ASSERTION_KEY: 'test-assertion-key-0123456789abcdef',
  ADMIN_TOKEN: 'test-admin-token-0123456789abcdef0123',
  AUTHORITY_URL: 'https://authority.test/v1/verify',
  ORIGIN_URL: 'https://origin.test',
  SERVER_ID: 'gate-test',
}

export default defineConfig({
  test: {
    projects: [
      {
        // The protocol core under plain Node: cross-checks against node:crypto.
        test: { name: 'node', include: ['test/**/*.node.test.ts'], environment: 'node' },
      },
      {
        // The protocol core and the gate, inside workerd with the gate's bindings.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: { bindings: GATE_BINDINGS },
          }),
        ],
        test: {
          name: 'gate',
          include: ['test/digest/**/*.test.ts', 'test/gate/**/*.test.ts'],
          exclude: ['test/**/*.node.test.ts', 'test/gate/console*.test.ts'],
        },
      },
      {
        // The operator's console: the same gate with CONSOLE_GROUP set for the worker and its
        // Durable Objects alike (they read it from their env to report to the console's index).
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: { bindings: { ...GATE_BINDINGS, CONSOLE_GROUP: 'admin' } },
          }),
        ],
        test: { name: 'console', include: ['test/gate/console*.test.ts'] },
      },
      {
        // The reference authority, inside workerd with its own bindings.
        plugins: [cloudflareTest({ wrangler: { configPath: './authority/wrangler.toml' } })],
        test: {
          name: 'authority',
          include: ['test/authority/**/*.test.ts'],
          exclude: ['test/**/*.node.test.ts'],
        },
      },
    ],
  },
})
