/** The README's configuration table says what the code does: every variable, every default. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { variableDefaults } from '../../src/gate/config.ts'

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8')

/** Rows `| \`NAME\` | default | meaning |` of the gate's variable table. */
function documented(): Map<string, string> {
  const table = README.slice(
    README.indexOf('### The gate (`wrangler.toml` `[vars]`)'),
    README.indexOf('\nSecrets (')
  )
  const rows = new Map<string, string>()
  for (const line of table.split('\n')) {
    const cells = line.split('|').map((c) => c.trim())
    const name = /^`([A-Z_]+)`$/.exec(cells[1] ?? '')?.[1]
    if (name) rows.set(name, (cells[2] ?? '').replaceAll('`', ''))
  }
  return rows
}

it('documents every variable with the default the code applies', () => {
  const rows = documented()
  for (const [name, value] of Object.entries(variableDefaults())) {
    expect(rows.has(name), `README lacks ${name}`).toBe(true)
    expect(rows.get(name)?.toLowerCase(), name).toBe(value.toLowerCase())
  }
})
