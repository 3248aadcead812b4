/**
 * The local secrets of `npm start`: the gate token it mints, and the re-mint of a token that no
 * longer fits, so that a checkout keeps working after a pull that changed the token format.
 */
import { createHmac, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ensureSecrets,
  LOCAL_TOKEN_LIFETIME,
  LOCAL_TOKEN_RENEWAL,
  readDotenv,
  type SecretFiles,
} from '../../scripts/stack/secrets.ts'
import { mintGateToken, verifyGateToken } from '../../src/authority-protocol/token.ts'
import { readAssertionKey } from '../../src/gate/assertion-keys.ts'

const NOW = 1_800_000_000
let dir: string
let files: SecretFiles

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'stack-secrets-test-'))
  files = { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') }
})

afterEach(() => rmSync(dir, { recursive: true, force: true }))

const gateToken = () => readDotenv(files.gate).get('AUTHORITY_TOKEN') as string
const authoritySecret = () => readDotenv(files.authority).get('AUTHORITY_SECRET') as string

/** A token in the format of earlier checkouts: `v1.<serverId>.<HMAC(label v1 + serverId)>`. */
function v1Token(secret: string, serverId: string): string {
  const mac = createHmac('sha256', secret).update(`digest-gate token v1:${serverId}`)
  return `v1.${Buffer.from(serverId).toString('base64url')}.${mac.digest('base64url')}`
}

describe('ensureSecrets', () => {
  it('creates every secret and a token for the local gate and realm, valid ten years', async () => {
    const written = await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)
    expect(written).toEqual([
      `${files.authority}: AUTHORITY_SECRET, METRICS_TOKEN`,
      `${files.gate}: NONCE_KEY, ASSERTION_KEY, ADMIN_TOKEN, AUTHORITY_TOKEN`,
    ])
    expect(await verifyGateToken(authoritySecret(), gateToken(), NOW)).toEqual({
      kind: 'valid',
      claims: {
        serverId: 'gate-local',
        realms: ['digest-gate'],
        expiresAt: NOW + LOCAL_TOKEN_LIFETIME,
      },
    })
    expect(readDotenv(files.authority).get('METRICS_TOKEN')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(statSync(files.authority).mode & 0o777).toBe(0o600)
    expect(statSync(files.gate).mode & 0o777).toBe(0o600)
  })

  it('keeps a token that still fits, and writes nothing', async () => {
    await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)
    const token = gateToken()
    const before = [readFileSync(files.gate, 'utf8'), readFileSync(files.authority, 'utf8')]
    expect(await ensureSecrets(files, 'gate-local', 'digest-gate', NOW + 365 * 86_400)).toEqual([])
    expect(gateToken()).toBe(token)
    expect([readFileSync(files.gate, 'utf8'), readFileSync(files.authority, 'utf8')]).toEqual(
      before
    )
  })

  it('re-mints a token of the earlier format (a checkout from before the pull)', async () => {
    await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)
    const secret = authoritySecret()
    const old = v1Token(secret, 'gate-local')
    const gateFile = readFileSync(files.gate, 'utf8').replace(
      /^AUTHORITY_TOKEN=.*$/m,
      `AUTHORITY_TOKEN="${old}"`
    )
    writeFileSync(files.gate, `# a comment the developer wrote\n${gateFile}`)
    expect(await verifyGateToken(secret, old, NOW)).toEqual({
      kind: 'invalid',
      reason: 'outdated_format',
    })

    expect(await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)).toEqual([
      `${files.gate}: AUTHORITY_TOKEN`,
    ])
    expect(await verifyGateToken(secret, gateToken(), NOW)).toMatchObject({
      kind: 'valid',
      claims: { serverId: 'gate-local', realms: ['digest-gate'] },
    })
    // The rest of the file is kept: the other secrets and the developer's lines.
    expect(readFileSync(files.gate, 'utf8')).toContain('# a comment the developer wrote')
    expect(authoritySecret()).toBe(secret)
  })

  it('re-mints a token of another realm, another gate, another secret, or near its expiry', async () => {
    await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)
    const secret = authoritySecret()
    const replace = (token: string) =>
      writeFileSync(
        files.gate,
        readFileSync(files.gate, 'utf8').replace(
          /^AUTHORITY_TOKEN=.*$/m,
          `AUTHORITY_TOKEN="${token}"`
        )
      )
    const claims = {
      serverId: 'gate-local',
      realms: ['digest-gate'],
      expiresAt: NOW + 86_400 * 365,
    }
    const misfits = [
      await mintGateToken(secret, { ...claims, realms: ['elsewhere'] }),
      await mintGateToken(secret, { ...claims, serverId: 'gate-other' }),
      await mintGateToken('another secret', claims),
      await mintGateToken(secret, { ...claims, expiresAt: NOW + LOCAL_TOKEN_RENEWAL - 1 }),
      'v2.<payload>.<mac> — mint with: npm run users -- token gate-local',
    ]
    for (const misfit of misfits) {
      replace(misfit)
      expect(await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)).toEqual([
        `${files.gate}: AUTHORITY_TOKEN`,
      ])
      expect(gateToken()).not.toBe(misfit)
      expect((await verifyGateToken(secret, gateToken(), NOW)).kind).toBe('valid')
    }
    // A token naming more realms, the local one among them, is kept.
    const wider = await mintGateToken(secret, { ...claims, realms: ['elsewhere', 'digest-gate'] })
    replace(wider)
    expect(await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)).toEqual([])
  })

  it('keeps a METRICS_TOKEN the developer chose', async () => {
    writeFileSync(files.authority, 'AUTHORITY_SECRET="s3cret-of-mine"\nMETRICS_TOKEN="mine"\n')
    const written = await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)
    expect(written).toEqual([
      `${files.gate}: NONCE_KEY, ASSERTION_KEY, ADMIN_TOKEN, AUTHORITY_TOKEN`,
    ])
    expect(readDotenv(files.authority).get('METRICS_TOKEN')).toBe('mine')
    expect((await verifyGateToken('s3cret-of-mine', gateToken(), NOW)).kind).toBe('valid')
  })

  it('makes ASSERTION_KEY a P-256 private JWK, and replaces the HS256 secret of an older checkout', async () => {
    const assertionKey = () => readDotenv(files.gate).get('ASSERTION_KEY') as string
    await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)
    const jwk = JSON.parse(assertionKey())
    expect(readAssertionKey(assertionKey(), 'ASSERTION_KEY').alg).toBe('ES256')
    // A usable key pair: what the private half signs, the public half verifies.
    const privateKey = createPrivateKey({ key: jwk, format: 'jwk' })
    const signature = sign('sha256', Buffer.from('x'), privateKey)
    expect(verify('sha256', Buffer.from('x'), createPublicKey(privateKey), signature)).toBe(true)
    // The JSON is single-quoted in the file: its double quotes survive the dotenv parsers.
    expect(readFileSync(files.gate, 'utf8')).toMatch(/^ASSERTION_KEY='\{"/m)

    const kept = readFileSync(files.gate, 'utf8')
    expect(await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)).toEqual([])
    expect(readFileSync(files.gate, 'utf8')).toBe(kept)

    for (const old of ['an-hs256-secret-of-an-older-checkout', '{"kty":"EC"}']) {
      writeFileSync(files.gate, kept.replace(/^ASSERTION_KEY=.*$/m, `ASSERTION_KEY="${old}"`))
      expect(await ensureSecrets(files, 'gate-local', 'digest-gate', NOW)).toEqual([
        `${files.gate}: ASSERTION_KEY`,
      ])
      expect(readAssertionKey(assertionKey(), 'ASSERTION_KEY').alg).toBe('ES256')
    }
  })
})
