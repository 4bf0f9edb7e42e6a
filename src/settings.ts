/**
 * The one declarative table of tsgunicorn's settings. CLI parsing, config-file validation, `--print-config`,
 * `--help` and the README's settings list are all derived from it.
 */
import { parseBind } from './address.ts';
import { ConfigError } from './errors.ts';
import { parsePeerList } from './http/trusted-peers.ts';
import { isValidFieldValue } from './http/response-policy.ts';
import { lookupGroup, lookupUser } from './passwd.ts';

/** A log severity, named as in Gunicorn's `--log-level`. */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';

/** All log levels, in increasing severity. */
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warning', 'error', 'critical'];

/** Gunicorn's default `--access-logformat` (Apache combined log format). */
export const DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"';

/** Which PROXY protocol headers a connection may start with (`--proxy-protocol`). */
export type ProxyProtocolMode = 'off' | 'v1' | 'v2' | 'auto';

/** The oldest TLS version a server accepts (`--ssl-min-version`; choices are compared in lower case). */
export type SslMinVersion = 'tlsv1.2' | 'tlsv1.3';

/** How a setting's value is read from a string (CLI flag, env var) or checked from a config file. */
export type SettingType = 'int' | 'number' | 'bytes' | 'string' | 'strings' | 'boolean' | 'choice' | 'octal';

/** One row of the settings table. */
export interface SettingSpec {
  /** Name used in config files and by `--print-config`. */
  name: keyof Settings;
  /** Long CLI flag without dashes (`workers`), extra long aliases, and the one-letter short flag. */
  flag?: string;
  aliases?: string[];
  short?: string;
  /** Environment variable that supplies the default (below the config file in precedence). */
  env?: string;
  /** Turns the env var's text into the setting's text value (e.g. PORT=9000 → bind 0.0.0.0:9000). */
  fromEnv?: (value: string) => string | string[];
  type: SettingType;
  choices?: readonly string[];
  /** Words accepted as they are besides the type's values (`auto` for workers). */
  keywords?: readonly string[];
  /** Smallest accepted number for int/number settings. */
  min?: number;
  /** May be null (unset) rather than a value. */
  nullable?: boolean;
  /** A boolean that also has a `--no-FLAG` form setting it to false. */
  negatable?: boolean;
  /** Checks a value already coerced to the setting's type; throws a ConfigError naming the bad value. */
  validate?: (value: never) => void;
  default: unknown;
  /** Placeholder for the value in help and README (`INT`, `ADDRESS`). */
  meta?: string;
  doc: string;
}

/** The resolved configuration every part of tsgunicorn reads. */
export interface Settings {
  app: string | null;
  config: string | null;
  bind: string[];
  backlog: number;
  /** A number, or `auto` (the CPUs this process may use: src/cpu-count.ts) until the arbiter resolves it. */
  workers: number | 'auto';
  timeout: number;
  bootTimeout: number;
  gracefulTimeout: number;
  preStopDelay: number;
  keepAlive: number;
  headerTimeout: number;
  requestTimeout: number;
  writeTimeout: number;
  workerConnections: number;
  limitRequestLine: number;
  limitRequestFields: number;
  limitRequestFieldSize: number;
  limitRequestBody: number;
  reusePort: boolean | null;
  maxRequests: number;
  maxRequestsJitter: number;
  maxWorkerMemory: number;
  minUptime: number;
  reloadBatch: number;
  serverHeader: string | null;
  pidfile: string | null;
  chdir: string | null;
  user: string | null;
  group: string | null;
  initgroups: boolean;
  umask: number;
  env: string[];
  procName: string | null;
  logLevel: LogLevel;
  errorLog: string;
  accessLog: string | null;
  accessLogFormat: string;
  forwardedAllowIps: string;
  secureSchemeHeaders: string[];
  proxyProtocol: ProxyProtocolMode;
  proxyAllowIps: string;
  /** TLS: the certificate chain file (PEM); TLS is on when it is set. */
  certfile: string | null;
  /** TLS: the private key file (PEM) of `certfile`. */
  keyfile: string | null;
  /** TLS: the CA bundle (PEM) client certificates are verified against. */
  caCerts: string | null;
  /** TLS client certificates: 0 none, 1 optional (verified when sent), 2 required. */
  certReqs: number;
  /** TLS: an OpenSSL cipher list, or null for the runtime's defaults. */
  ciphers: string | null;
  /** TLS: the oldest protocol version accepted. */
  sslMinVersion: SslMinVersion;
  checkConfig: boolean;
  printConfig: boolean;
}

function checkEnvEntries(entries: string[]): void {
  const bad = entries.find((entry) => !/^[^=]+=/.test(entry));
  if (bad !== undefined) throw new ConfigError(`invalid value "${bad}" for -e/--env: expected KEY=VALUE`);
}

function checkSecureSchemeHeaders(entries: string[]): void {
  const bad = entries.find((entry) => !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+=[^,\s]+$/.test(entry));
  if (bad !== undefined) {
    throw new ConfigError(`invalid value "${bad}" for --secure-scheme-header: expected HEADER=VALUE (a field name, ` +
      'a value without commas or spaces)');
  }
}

function checkAccessLogFormat(format: string): void {
  if (/[\r\n]/.test(format)) {
    throw new ConfigError(`invalid value ${JSON.stringify(format)} for --access-logformat: one line per request, ` +
      'without CR or LF');
  }
}

function checkServerHeader(value: string): void {
  if (value.trim() === '' || !isValidFieldValue(value)) {
    throw new ConfigError(`invalid value ${JSON.stringify(value)} for --server-header: expected printable latin-1 text`);
  }
}

/** Every setting, in the order `--help`, `--print-config` and the README show them. */
export const SETTINGS: readonly SettingSpec[] = [
  {
    name: 'app', type: 'string', nullable: true, default: null, meta: 'MODULE[:EXPORT]',
    doc: 'The app: a module whose default export (or the named EXPORT) is a Fetch handler, an object with ' +
      '`fetch(request, info)` or a function. Given as the positional argument on the command line.',
  },
  {
    name: 'config', flag: 'config', short: 'c', type: 'string', nullable: true, default: null, meta: 'FILE',
    doc: 'Config file (.ts, .js, .mjs or .json) whose default export holds settings by name. Default: ' +
      './tsgunicorn.config.ts, .js or .json when present.',
  },
  {
    name: 'bind', flag: 'bind', short: 'b', type: 'strings', env: 'PORT', fromEnv: (port) => [`0.0.0.0:${port}`],
    default: ['127.0.0.1:8000'], meta: 'ADDRESS', validate: (binds: string[]) => binds.forEach(parseBind),
    doc: 'Socket to listen on, repeatable: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N. Default ' +
      '127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set.',
  },
  {
    name: 'backlog', flag: 'backlog', type: 'int', min: 1, default: 2048, meta: 'INT',
    doc: 'Maximum number of pending connections queued on each listening socket.',
  },
  {
    name: 'workers', flag: 'workers', short: 'w', type: 'int', min: 1, keywords: ['auto'], env: 'WEB_CONCURRENCY',
    default: 1, meta: 'INT|auto',
    doc: 'Number of worker processes; `auto` is the CPUs this process may use (its CPU affinity and cgroup CPU quota, ' +
      'as in a container with a CPU limit; the master logs the number and why). Default $WEB_CONCURRENCY or 1.',
  },
  {
    name: 'timeout', flag: 'timeout', short: 't', type: 'number', min: 0, default: 30, meta: 'SECONDS',
    doc: 'A worker whose event loop sends no heartbeat for this long is aborted and killed (0 = never).',
  },
  {
    name: 'bootTimeout', flag: 'boot-timeout', type: 'number', min: 0, default: 60, meta: 'SECONDS',
    doc: 'A worker that has not loaded its app and begun serving this long after it started is killed; during ' +
      'a HUP this stops the rollout (0 = no limit). Until it is ready, --timeout does not apply to it.',
  },
  {
    name: 'gracefulTimeout', flag: 'graceful-timeout', type: 'number', min: 0, default: 30, meta: 'SECONDS',
    doc: 'Time workers get to finish in-flight requests on a graceful stop, reload or recycle before SIGKILL.',
  },
  {
    name: 'preStopDelay', flag: 'pre-stop-delay', type: 'number', min: 0, default: 0, meta: 'SECONDS',
    doc: 'After TERM the master keeps serving (sockets open, workers serving) this long before it drains, so ' +
      'that a load balancer stops sending new connections first (Kubernetes\' endpoint removal). A second TERM ' +
      'drains at once.',
  },
  {
    name: 'keepAlive', flag: 'keep-alive', type: 'number', min: 0, default: 5, meta: 'SECONDS',
    doc: 'How long an idle keep-alive connection is kept open.',
  },
  {
    name: 'headerTimeout', flag: 'header-timeout', type: 'number', min: 0, default: 10, meta: 'SECONDS',
    doc: 'A connection that has not sent a whole request head this long after it opened (or after its last ' +
      'response) is closed, however slowly its bytes arrive (0 = no limit).',
  },
  {
    name: 'requestTimeout', flag: 'request-timeout', type: 'number', min: 0, default: 0, meta: 'SECONDS',
    doc: 'A handler that has not produced its response this long after the request arrived has its ' +
      '`request.signal` aborted, and the client gets 503 with `Connection: close` (0 = off). Unlike --timeout, ' +
      'the worker serves on.',
  },
  {
    name: 'writeTimeout', flag: 'write-timeout', type: 'number', min: 0, default: 30, meta: 'SECONDS',
    doc: 'A client that takes none of a response being written to it for this long is cut (0 = never).',
  },
  {
    name: 'workerConnections', flag: 'worker-connections', type: 'int', min: 1, default: 1000, meta: 'INT',
    doc: 'Most connections a worker serves at once; past it a new connection gets 503 with `Connection: close` ' +
      '(README, "Runtimes and engines": not on the native servers).',
  },
  {
    name: 'limitRequestLine', flag: 'limit-request-line', type: 'int', min: 0, default: 4094, meta: 'BYTES',
    doc: 'Longest request line (method, target, version) accepted; longer gets 414. 0 or more than 8190 means 8190.',
  },
  {
    name: 'limitRequestFields', flag: 'limit-request-fields', type: 'int', min: 0, default: 100, meta: 'INT',
    doc: 'Most header fields in a request; more gets 431. 0 or more than 32768 means 32768.',
  },
  {
    name: 'limitRequestFieldSize', flag: 'limit-request-field_size', aliases: ['limit-request-field-size'],
    type: 'int', min: 0, default: 8190, meta: 'BYTES',
    doc: 'Longest header line (name, value and CRLF); longer gets 431. 0 means 8190.',
  },
  {
    name: 'limitRequestBody', flag: 'limit-request-body', aliases: ['max-body-size'], type: 'int', min: 0, default: 0,
    meta: 'BYTES',
    doc: 'Largest request body; larger gets 413, a streamed body as soon as it passes the limit (0 = unlimited).',
  },
  {
    name: 'reusePort', flag: 'reuse-port', type: 'boolean', negatable: true, nullable: true, default: null,
    doc: 'On: every worker opens its own SO_REUSEPORT socket on each TCP bind and serves it with the runtime\'s ' +
      'native server (Bun.serve, Deno.serve, node:http on Node >= 22.12); unix: and fd:// binds stay inherited. ' +
      'Off: workers accept on the sockets the master holds. Default: on for Bun where the kernel migrates a ' +
      'closing socket\'s queued connections (net.ipv4.tcp_migrate_req=1), off otherwise (README, "Runtimes and ' +
      'engines").',
  },
  {
    name: 'maxRequests', flag: 'max-requests', type: 'int', min: 0, default: 0, meta: 'INT',
    doc: 'A worker retires gracefully after this many requests and is replaced (0 = never).',
  },
  {
    name: 'maxRequestsJitter', flag: 'max-requests-jitter', type: 'int', min: 0, default: 0, meta: 'INT',
    doc: 'Adds random(0..N) to each worker\'s max-requests so that workers do not all restart at once.',
  },
  {
    name: 'maxWorkerMemory', flag: 'max-worker-memory', type: 'bytes', default: 0, meta: 'BYTES',
    doc: 'A worker whose resident memory (RSS, from its heartbeat) is above this is replaced gracefully, one ' +
      'worker at a time: bytes, or with a K, M or G suffix (1024-based), e.g. 512M (0 = off).',
  },
  {
    name: 'minUptime', flag: 'min-uptime', type: 'number', min: 0, default: 1, meta: 'SECONDS',
    doc: 'A worker that dies sooner than this after it started is respawned after a delay that doubles with ' +
      'each such death (1 s, 2 s, … up to 30 s); a worker that lives longer resets the delay.',
  },
  {
    name: 'reloadBatch', flag: 'reload-batch', type: 'int', min: 1, default: 1, meta: 'INT',
    doc: 'On HUP, how many new workers boot at once: each old worker is retired only once a new one is ready.',
  },
  {
    name: 'serverHeader', flag: 'server-header', type: 'string', nullable: true, default: null, meta: 'TEXT',
    validate: checkServerHeader,
    doc: 'Send this `Server` header with every response whose app set none (default: no `Server` header).',
  },
  {
    name: 'pidfile', flag: 'pid', short: 'p', type: 'string', nullable: true, default: null, meta: 'FILE',
    doc: 'Write the master\'s pid to this file (refuses to start over a live pid; removed at exit).',
  },
  {
    name: 'chdir', flag: 'chdir', type: 'string', nullable: true, default: null, meta: 'DIR',
    doc: 'Change to this directory before loading the app.',
  },
  {
    name: 'user', flag: 'user', short: 'u', type: 'string', nullable: true, default: null, meta: 'USER',
    validate: (user: string) => void lookupUser(user),
    doc: 'Run the workers as this user (name or numeric id; the master, which binds, stays as it is). Default: the ' +
      'master\'s user.',
  },
  {
    name: 'group', flag: 'group', short: 'g', type: 'string', nullable: true, default: null, meta: 'GROUP',
    validate: (group: string) => void lookupGroup(group),
    doc: 'Run the workers as this group (name or numeric id), their only supplementary group unless --initgroups. ' +
      'Default: --user\'s primary group, else the master\'s group.',
  },
  {
    name: 'initgroups', flag: 'initgroups', type: 'boolean', default: false,
    doc: 'Give the workers the supplementary groups /etc/group lists --user in (initgroups) instead of only --group.',
  },
  {
    name: 'umask', flag: 'umask', short: 'm', type: 'octal', min: 0, default: 0, meta: 'INT',
    doc: 'The umask the master binds unix sockets under (0: mode 0777), as Gunicorn: 022 and 0o22 are octal, 0x12 ' +
      'hex, 18 decimal.',
  },
  {
    name: 'env', flag: 'env', short: 'e', type: 'strings', default: [], meta: 'KEY=VALUE', validate: checkEnvEntries,
    doc: 'Set an environment variable in the master and the workers, repeatable.',
  },
  {
    name: 'procName', flag: 'name', short: 'n', type: 'string', nullable: true, default: null, meta: 'NAME',
    doc: 'Base of the process titles: `tsgunicorn: master [NAME]`, `tsgunicorn: worker [NAME]`.',
  },
  {
    name: 'logLevel', flag: 'log-level', type: 'choice', choices: LOG_LEVELS,
    default: 'info', meta: 'LEVEL', doc: 'Lowest level written to the error log.',
  },
  {
    name: 'errorLog', flag: 'error-logfile', aliases: ['log-file'], type: 'string', default: '-', meta: 'FILE',
    doc: 'Error log file; - is stderr.',
  },
  {
    name: 'accessLog', flag: 'access-logfile', type: 'string', nullable: true, default: null, meta: 'FILE',
    doc: 'Access log file; - is stdout. Off by default.',
  },
  {
    name: 'accessLogFormat', flag: 'access-logformat', type: 'string',
    default: DEFAULT_ACCESS_LOG_FORMAT, meta: 'FORMAT', validate: checkAccessLogFormat,
    doc: 'Access log line with Gunicorn\'s atoms: h l u t r s b B f a T M D L p m U q H, %({name}i) and ' +
      '%({name}o); or json: one JSON object per line (README, "Logging").',
  },
  {
    name: 'forwardedAllowIps', flag: 'forwarded-allow-ips', type: 'string', env: 'FORWARDED_ALLOW_IPS',
    default: '127.0.0.1,::1', meta: 'ADDRESSES',
    validate: (list: string) => void parsePeerList(list, '--forwarded-allow-ips'),
    doc: 'Peers trusted to say, with X-Forwarded-For, X-Forwarded-Host and the secure scheme headers, who the ' +
      'client is and which scheme and host it asked for (request.url, info.remoteAddr): IPv4/IPv6 addresses ' +
      'and CIDR networks separated by commas, or * for every peer. Unix-socket peers are always trusted. ' +
      'Default $FORWARDED_ALLOW_IPS or 127.0.0.1,::1 (README, "Behind a proxy").',
  },
  {
    name: 'secureSchemeHeaders', flag: 'secure-scheme-header', type: 'strings',
    default: ['X-FORWARDED-PROTOCOL=ssl', 'X-FORWARDED-PROTO=https', 'X-FORWARDED-SSL=on'], meta: 'HEADER=VALUE',
    validate: checkSecureSchemeHeaders,
    doc: 'A header and the value with which a trusted peer says the client used https, repeatable (given ones ' +
      'replace the defaults; `[]` in a config file turns them off). Any other value of such a header means ' +
      'http; headers that disagree get 400.',
  },
  {
    name: 'proxyProtocol', flag: 'proxy-protocol', type: 'choice', choices: ['off', 'v1', 'v2', 'auto'],
    default: 'off', meta: 'MODE',
    doc: 'Read a PROXY protocol header (HAProxy\'s v1 text, v2 binary, or auto: either) at the start of each ' +
      'connection from a --proxy-allow-from peer: its client address becomes info.remoteAddr and the access ' +
      'log\'s %(h)s. A connection without one is served as it is; a malformed one gets 400. Not with the native ' +
      'servers of Deno and Bun in reuse-port mode, which parse the bytes themselves (README, "Behind a proxy").',
  },
  {
    name: 'proxyAllowIps', flag: 'proxy-allow-from', type: 'string', default: '127.0.0.1,::1', meta: 'ADDRESSES',
    validate: (list: string) => void parsePeerList(list, '--proxy-allow-from'),
    doc: 'Peers allowed to send a PROXY protocol header, as --forwarded-allow-ips lists them; a header from ' +
      'another peer closes the connection. Unix-socket peers are always allowed.',
  },
  {
    name: 'certfile', flag: 'certfile', type: 'string', nullable: true, default: null, meta: 'FILE',
    doc: 'Serve TLS (https) with this certificate (PEM; the server\'s certificate first, then its chain); needs ' +
      '--keyfile. Every worker reads the files when it boots, so a HUP serves renewed files without a restart ' +
      '(README, "TLS").',
  },
  {
    name: 'keyfile', flag: 'keyfile', type: 'string', nullable: true, default: null, meta: 'FILE',
    doc: 'The private key (PEM, unencrypted) of --certfile.',
  },
  {
    name: 'caCerts', flag: 'ca-certs', type: 'string', nullable: true, default: null, meta: 'FILE',
    doc: 'CA certificates (PEM) that client certificates are verified against (--cert-reqs); default: the ' +
      'runtime\'s own root CAs.',
  },
  {
    name: 'certReqs', flag: 'cert-reqs', type: 'int', min: 0, default: 0, meta: '0|1|2',
    validate: (value: number) => {
      if (value > 2) throw new ConfigError(`invalid value ${value} for --cert-reqs: expected 0 (none), 1 (optional) or 2 (required)`);
    },
    doc: 'Client certificates: 0 none asked for; 1 optional (asked for, and a connection whose certificate does not ' +
      'verify against --ca-certs is refused); 2 required (a connection without a valid one is refused). Not every ' +
      'engine can (README, "TLS").',
  },
  {
    name: 'ciphers', flag: 'ciphers', type: 'string', nullable: true, default: null, meta: 'CIPHERS',
    doc: 'OpenSSL cipher list for TLS 1.2 (e.g. ECDHE+AESGCM); default: the runtime\'s. Not with Deno (README, "TLS").',
  },
  {
    name: 'sslMinVersion', flag: 'ssl-min-version', type: 'choice', choices: ['tlsv1.2', 'tlsv1.3'], default: 'tlsv1.2',
    meta: 'VERSION', doc: 'The oldest TLS version a client may use: TLSv1.2 or TLSv1.3 (in any case).',
  },
  {
    name: 'checkConfig', flag: 'check-config', type: 'boolean', default: false,
    doc: 'Check the configuration and that the app loads, then exit 0 (good) or 1 (bad).',
  },
  {
    name: 'printConfig', flag: 'print-config', type: 'boolean', default: false,
    doc: 'Print the resolved configuration and exit.',
  },
];

/** Looks a setting up by name. */
export function settingByName(name: string): SettingSpec | undefined {
  return SETTINGS.find((spec) => spec.name === name);
}

/** The CLI form of a setting (`-w/--workers INT`, `--[no-]reuse-port`) for messages and help. */
export function describeFlag(spec: SettingSpec): string {
  if (!spec.flag) return spec.name;
  const long = [spec.flag, ...(spec.aliases ?? [])].map((f) => (spec.negatable ? `--[no-]${f}` : `--${f}`)).join('/');
  return spec.short ? `-${spec.short}/${long}` : long;
}

/** The settings' durations in milliseconds: seconds become milliseconds here and nowhere else. */
export interface Durations {
  /** Heartbeat timeout (0 = never). */
  timeoutMs: number;
  gracefulMs: number;
  keepAliveMs: number;
  headerTimeoutMs: number;
  /** --request-timeout (0 = off). */
  requestTimeoutMs: number;
  /** --write-timeout (0 = never). */
  writeTimeoutMs: number;
  /** How often a worker sends its heartbeat: a quarter of the timeout, at most once a second. */
  heartbeatMs: number;
  /** --boot-timeout (0 = no limit). */
  bootTimeoutMs: number;
  /** --pre-stop-delay. */
  preStopDelayMs: number;
  /** --min-uptime. */
  minUptimeMs: number;
}

/** Reads the durations of a configuration in milliseconds. */
export function durationsOf(
  settings: Pick<Settings, 'timeout' | 'gracefulTimeout' | 'keepAlive' | 'headerTimeout' | 'requestTimeout' | 'writeTimeout' |
    'bootTimeout' | 'preStopDelay' | 'minUptime'>,
): Durations {
  const timeoutMs = settings.timeout * 1000;
  return {
    timeoutMs,
    gracefulMs: settings.gracefulTimeout * 1000,
    keepAliveMs: settings.keepAlive * 1000,
    headerTimeoutMs: settings.headerTimeout * 1000,
    requestTimeoutMs: settings.requestTimeout * 1000,
    writeTimeoutMs: settings.writeTimeout * 1000,
    heartbeatMs: timeoutMs > 0 ? Math.min(1000, timeoutMs / 4) : 1000,
    bootTimeoutMs: settings.bootTimeout * 1000,
    preStopDelayMs: settings.preStopDelay * 1000,
    minUptimeMs: settings.minUptime * 1000,
  };
}
