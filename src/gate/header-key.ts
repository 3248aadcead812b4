/**
 * CGI, WSGI, Rack and PHP read `X_Auth_User` and `X-Auth-User` both as HTTP_X_AUTH_USER (Apache's
 * CGI mapping turns every non-alphanumeric into `_`): header names the gate strips or refuses are
 * compared that way, so no second spelling reaches an origin that reads the first.
 */
export function headerKey(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '-')
}
