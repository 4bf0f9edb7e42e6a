/** A configuration problem that the CLI reports as one line and exit status 1. */
export class ConfigError extends Error {}
