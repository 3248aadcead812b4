/**
 * A plain Digest login for harness checks (not a client under test): digest-fetch over Node's
 * fetch, MD5, which every gate configuration used by these checks offers.
 */
import DigestClient from 'digest-fetch'
import { type Echo, parseEcho } from './echo.ts'

export interface Login {
  status: number
  echo?: Echo
  body: string
}

export async function login(url: string, user: string, password: string): Promise<Login> {
  const response = await new DigestClient(user, password, { algorithm: 'MD5' }).fetch(url)
  const body = await response.text()
  return {
    status: response.status,
    body,
    echo: response.status === 200 ? parseEcho(body) : undefined,
  }
}
