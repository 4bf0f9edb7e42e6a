/**
 * The one declarative table of tsgunicorn's settings. CLI parsing, config-file validation, `--print-config`,
 * `--help` and the README's settings list are all derived from it.
 */
import { parseAddress, parseBind } from './address.ts';
import { ConfigError } from './errors.ts';
import type { HookName, HookSettings } from './hooks.ts';
import { parseHttpProtocols } from './http/http-protocols.ts';
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
export type SettingType = 'int' | 'number' | 'bytes' | 'string' | 'strings' | 'boolean' | 'choice' | 'octal' | 'function';

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

/** The resolved configuration every part of tsgunicorn reads (the server hooks included: src/hooks.ts). */
export interface Settings extends HookSettings {
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
  wsMaxMessage: number;
  reusePort: boolean | null;
  maxRequests: number;
  maxRequestsJitter: number;
  maxWorkerMemory: number;
  minUptime: number;
  reloadBatch: number;
  reload: boolean;
  reloadExtraFiles: string[];
  serverHeader: string | null;
  pidfile: string | null;
  chdir: string | null;
  user: string | null;
  group: string | null;
  initgroups: boolean;
  umask: number;
  env: string[];
  procName: string | null;
  /** The control socket's path; null: the default (src/control-socket-path.ts). */
  controlSocket: string | null;
  /** The control socket file's mode (0600: the master's user only). */
  controlSocketMode: number;
  /** --no-control-socket: the master opens no control socket. */
  controlSocketDisable: boolean;
  logLevel: LogLevel;
  errorLog: string;
  accessLog: string | null;
  accessLogFormat: string;
  metricsBind: string | null;
  statsdHost: string | null;
  statsdPrefix: string;
  dogstatsdTags: string;
  forwardedAllowIps: string;
  secureSchemeHeaders: string[];
  proxyProtocol: ProxyProtocolMode;
  proxyAllowIps: string;
  httpProtocols: string;
  http2MaxConcurrentStreams: number;
  http2InitialWindowSize: number;
  http2MaxFrameSize: number;
  http2MaxHeaderListSize: number;
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

function checkFileMode(mode: number): void {
  if (mode > 0o777) throw new ConfigError(`invalid value "0${mode.toString(8)}" for --control-socket-mode: expected a file mode, 0 to 0777`);
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

/** The port of a --metrics-bind without one. */
export const METRICS_DEFAULT_PORT = 9100;
/** The port of a --statsd-host without one (Gunicorn's). */
export const STATSD_DEFAULT_PORT = 8125;

function checkMetricsBind(bind: string): void {
  if (parseAddress(bind, '--metrics-bind', METRICS_DEFAULT_PORT).kind === 'fd') {
    throw new ConfigError(`invalid value "${bind}" for --metrics-bind: expected HOST:PORT or unix:PATH`);
  }
}

function checkStatsdHost(host: string): void {
  // node:dgram, the one UDP API of all three runtimes, has no unix datagram sockets.
  if (host.startsWith('unix:') || parseAddress(host, '--statsd-host', STATSD_DEFAULT_PORT).kind !== 'tcp') {
    throw new ConfigError(`invalid value "${host}" for --statsd-host: expected HOST:PORT (UDP; unix sockets are not supported)`);
  }
}

/** A statsd prefix or tag list goes into every line as it is: white space and `forbidden` would break the line. */
function checkStatsdText(flag: string, forbidden: string) {
  return (value: string) => {
    if (/\s/.test(value) || [...forbidden].some((char) => value.includes(char))) {
      throw new ConfigError(`invalid value ${JSON.stringify(value)} for ${flag}: no white space or ${forbidden} allowed`);
    }
  };
}

/** A server hook's row: a function, set in a config file or serve()'s options only (README, "Server hooks"). */
function hookRow(name: HookName, doc: string): SettingSpec {
  return { name, type: 'function', nullable: true, default: null, doc: `Server hook. ${doc}` };
}

/** The largest value of an HTTP/2 setting (RFC 9113 section 6.5.2): 32 bits. */
const MAX_UINT32 = 2 ** 32 - 1;
/** The largest HTTP/2 flow-control window (RFC 9113 section 6.9.1). */
const MAX_WINDOW_SIZE = 2 ** 31 - 1;
/** The largest HTTP/2 frame payload (RFC 9113 section 6.5.2). */
const MAX_FRAME_SIZE = 2 ** 24 - 1;

/** A validator refusing numbers above `max`, for a setting whose minimum the row's `min` checks. */
function atMost(flag: string, max: number): (value: number) => void {
  return (value) => {
    if (value > max) throw new ConfigError(`invalid value ${value} for ${flag}: expected at most ${max}`);
  };
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
    name: 'wsMaxMessage', flag: 'ws-max-message', type: 'bytes', default: 16 * 1024 * 1024, meta: 'BYTES',
    validate: (bytes: number) => {
      if (bytes < 1) throw new ConfigError(`invalid value "${bytes}" for --ws-max-message: expected at least 1 byte`);
    },
    doc: 'Largest WebSocket message (all its fragments) a client may send; a larger one closes the connection with ' +
      '1009. Also how many bytes a client that does not read may leave unsent before its connection is cut ' +
      '(README, "WebSocket"). Bytes, or with a K, M or G suffix, e.g. 16M.',
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
    name: 'reload', flag: 'reload', type: 'boolean', default: false,
    doc: 'For development: replace the workers (a rolling reload, as HUP) when the app\'s source files change: the ' +
      'app module and the local modules it imports, the config file, and --reload-extra-file (README, "Dev mode: ' +
      '--reload"). An app that fails to load is logged once and the master waits for the next change.',
  },
  {
    name: 'reloadExtraFiles', flag: 'reload-extra-file', type: 'strings', default: [], meta: 'FILE',
    doc: 'With --reload, also reload when this file changes, repeatable (templates, data files).',
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
    name: 'controlSocket', flag: 'control-socket', type: 'string', nullable: true, default: null, meta: 'PATH',
    doc: 'The unix socket `tsgunicorn ctl` steers the master through. Default: <pidfile>.ctl with --pid, else ' +
      '$XDG_RUNTIME_DIR/tsgunicorn-NAME.ctl (NAME: --name, else the app file\'s name), else the same in ' +
      '~/.tsgunicorn/ (README, "Control socket").',
  },
  {
    name: 'controlSocketMode', flag: 'control-socket-mode', type: 'octal', min: 0, default: 0o600, meta: 'MODE', validate: checkFileMode,
    doc: 'The control socket file\'s permissions (octal as --umask reads it; default 0600 = 384: only the ' +
      'master\'s user may connect, and whoever connects can stop the server).',
  },
  {
    name: 'controlSocketDisable', flag: 'no-control-socket', type: 'boolean', default: false,
    doc: 'Open no control socket.',
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
    name: 'metricsBind', flag: 'metrics-bind', type: 'string', nullable: true, default: null, meta: 'ADDRESS',
    validate: checkMetricsBind,
    doc: 'Serve metrics and health checks from the master at HOST:PORT (or unix:PATH): /metrics in Prometheus text ' +
      'format, /healthz (the master is alive), /readyz (a worker is ready and the server is not stopping). Off by ' +
      'default (README, "Metrics and health").',
  },
  {
    name: 'statsdHost', flag: 'statsd-host', type: 'string', nullable: true, default: null, meta: 'HOST:PORT',
    validate: checkStatsdHost,
    doc: 'Send Gunicorn\'s statsd metrics (gunicorn.requests, gunicorn.request.duration, …) over UDP to this address ' +
      `(port ${STATSD_DEFAULT_PORT} when omitted), from the master once a second. Off by default.`,
  },
  {
    name: 'statsdPrefix', flag: 'statsd-prefix', type: 'string', default: '', meta: 'PREFIX',
    validate: checkStatsdText('--statsd-prefix', '|:#@'),
    doc: 'Put PREFIX. before every statsd metric name.',
  },
  {
    name: 'dogstatsdTags', flag: 'dogstatsd-tags', type: 'string', default: '', meta: 'TAGS',
    validate: checkStatsdText('--dogstatsd-tags', '|#@'),
    doc: 'DogStatsD tags added to every statsd line, as key:value pairs separated by commas.',
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
      'connection from a --proxy-allow-from peer (in clear before the TLS handshake with --certfile): its client ' +
      'address becomes info.remoteAddr and the access log\'s %(h)s. A connection without one is served as it is; ' +
      'a malformed one gets 400. Not with the native ' +
      'servers of Deno and Bun in reuse-port mode, which parse the bytes themselves (README, "Behind a proxy").',
  },
  {
    name: 'proxyAllowIps', flag: 'proxy-allow-from', type: 'string', default: '127.0.0.1,::1', meta: 'ADDRESSES',
    validate: (list: string) => void parsePeerList(list, '--proxy-allow-from'),
    doc: 'Peers allowed to send a PROXY protocol header, as --forwarded-allow-ips lists them; a header from ' +
      'another peer closes the connection. Unix-socket peers are always allowed.',
  },
  hookRow('onStarting', 'Master, before it binds; awaited: `(arbiter) => void`.'),
  hookRow('onReload', 'Master, on HUP or --reload, with the new settings, before new workers spawn; awaited: `(arbiter)`.'),
  hookRow('whenReady', 'Master, once its sockets listen, before the first workers spawn; awaited: `(arbiter)`.'),
  hookRow('preFork', 'Master, before it spawns a worker: `(arbiter, { slot, age })`.'),
  hookRow('postFork', 'Worker, once started, before the app loads; awaited: `({ pid, settings }, worker)`.'),
  hookRow('postWorkerInit', 'Worker, once the app is loaded, before it serves; awaited: `(worker)`.'),
  hookRow('workerInt', 'Worker, on INT or QUIT (a quick stop): `(worker)`.'),
  hookRow('workerAbort', 'Worker, aborted by the master on --timeout: `(worker)`.'),
  hookRow('preExec', 'Master, on USR2, before it starts the new master: `(arbiter)`.'),
  hookRow('preRequest', 'Worker, before the handler gets a request; not awaited: `(worker, request, info)`.'),
  hookRow('postRequest', 'Worker, once the handler answered; not awaited: `(worker, request, { status, durationMs, ' +
    'response, error })`.'),
  hookRow('childExit', 'Master, after a worker exited: `(arbiter, { pid, slot, exitCode, signal, … })`.'),
  hookRow('workerExit', 'Worker, as it exits: `({ pid, settings }, worker)`.'),
  hookRow('nworkersChanged', 'Master, when the number of workers to run changes: `(arbiter, count, previous)`.'),
  hookRow('onExit', 'Master, just before it exits; awaited: `(arbiter)`.'),
  {
    name: 'httpProtocols', flag: 'http-protocols', type: 'string', default: 'h1', meta: 'LIST',
    validate: (list: string) => void parseHttpProtocols(list),
    doc: 'HTTP versions to serve, comma-separated: h1 (HTTP/1.1), h2 (HTTP/2 by ALPN, over TLS only), h2c (HTTP/2 ' +
      'with prior knowledge on a plain socket, from --forwarded-allow-ips peers only; another peer gets 400). ' +
      'Not every engine can serve HTTP/2 (README, "HTTP/2").',
  },
  {
    name: 'http2MaxConcurrentStreams', flag: 'http2-max-concurrent-streams', type: 'int', min: 1,
    validate: atMost('--http2-max-concurrent-streams', MAX_UINT32), default: 100, meta: 'INT',
    doc: 'Most streams (requests) an HTTP/2 client may have open at once on one connection.',
  },
  {
    name: 'http2InitialWindowSize', flag: 'http2-initial-window-size', type: 'int', min: 0,
    validate: atMost('--http2-initial-window-size', MAX_WINDOW_SIZE), default: 65535, meta: 'BYTES',
    doc: 'HTTP/2 flow-control window of each stream: request body bytes a client may send before the app reads them.',
  },
  {
    name: 'http2MaxFrameSize', flag: 'http2-max-frame-size', type: 'int', min: 16384,
    validate: atMost('--http2-max-frame-size', MAX_FRAME_SIZE), default: 16384,
    meta: 'BYTES', doc: 'Largest HTTP/2 frame payload the server accepts (16384-16777215).',
  },
  {
    name: 'http2MaxHeaderListSize', flag: 'http2-max-header-list-size', type: 'int', min: 0,
    validate: atMost('--http2-max-header-list-size', MAX_UINT32), default: 65536, meta: 'BYTES',
    doc: 'Largest HTTP/2 header list (names, values and 32 bytes per field, decoded) a request may have; a larger ' +
      'one is refused before it reaches the limits of --limit-request-field_size (0 = no limit of its own).',
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
      'verify against --ca-certs is refused); 2 required (a connection without a valid one is refused). The handler ' +
      'reads the verified certificate as info.clientCertificate. Not every engine can (README, "TLS").',
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
