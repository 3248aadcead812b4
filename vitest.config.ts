import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        // The protocol core under plain Node: cross-checks against node:crypto.
        test: { name: 'node', include: ['test/**/*.node.test.ts'], environment: 'node' },
      },
      {
        // The protocol core and the gate, inside workerd with the gate's bindings.
        plugins: [cloudflareTest({ wrangler: { configPath: './wrangler.toml' } })],
        test: {
          name: 'gate',
          include: ['test/digest/**/*.test.ts', 'test/gate/**/*.test.ts'],
          exclude: ['test/**/*.node.test.ts'],
        },
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
