/** A bad configuration value, reported by the variable's name (never by a secret's value). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}
