import { defineConfig } from 'vitest/config'

// `npm run test:e2e`: real clients (curl, wget, python3-requests, Python urllib, digest-fetch,
// urllib, Chromium, Firefox) against the real stack under `wrangler dev`, started once by the
// global setup. Plain Node, one file at a time: the files share the stack, and two cores are busy
// enough with the workers.
export default defineConfig({
  test: {
    name: 'e2e',
    include: ['test/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    globalSetup: ['test/e2e/global-setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
})
