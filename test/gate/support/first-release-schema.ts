/**
 * The security context's tables exactly as the first release created them (no schema table):
 * what a migration must bring up to date in place.
 */
export function createFirstReleaseTables(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE context (
    id INTEGER PRIMARY KEY CHECK (id = 1), username TEXT NOT NULL, userhash INTEGER NOT NULL,
    realm TEXT NOT NULL, principal TEXT NOT NULL, algorithm TEXT NOT NULL,
    session_key TEXT NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL,
    verified_at INTEGER NOT NULL, expires INTEGER NOT NULL, idle_timeout INTEGER NOT NULL,
    revoked INTEGER NOT NULL)`)
  sql.exec(
    'CREATE TABLE failures (ip TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL)'
  )
  sql.exec(
    'CREATE TABLE nonces (nonce TEXT PRIMARY KEY, state BLOB NOT NULL, reserved INTEGER NOT NULL, expires INTEGER NOT NULL)'
  )
}
