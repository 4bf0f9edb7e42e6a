/**
 * TLS from the settings (`--certfile`, `--keyfile`, `--ca-certs`, `--cert-reqs`, `--ciphers`, `--ssl-min-version`):
 * the files read into node:tls-shaped options that every engine maps from, the master's check of them before it
 * spawns a worker, and what an engine cannot do of them. Workers read the files when they boot, so the new workers
 * of a HUP serve renewed certificates.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { ConfigError } from './errors.ts';
import { parseHttpProtocols } from './http/http-protocols.ts';
import type { ProcessIdentity } from './runtime/index.ts';
import type { Settings } from './settings.ts';

/** A TLS version as node:tls names it. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** What a server needs to speak TLS, in node:tls's names (PEM texts, not file names). */
export interface TlsOptions {
  cert: string;
  key: string;
  /** Client certificates are verified against these; undefined: the runtime's root CAs. */
  ca?: string;
  /** Ask the client for a certificate (--cert-reqs 1 or 2). */
  requestCert: boolean;
  /** Refuse a client without a valid certificate (--cert-reqs 2). */
  rejectUnauthorized: boolean;
  /** --cert-reqs 1: a certificate the client sends must verify (node:tls would only note that it does not). */
  verifySentCertificate: boolean;
  ciphers?: string;
  minVersion: TlsVersion;
  /** The protocols offered by ALPN, most preferred first (HTTP/2 asks for them); absent: no ALPN. */
  ALPNProtocols?: string[];
}

/** The settings TLS reads. */
type TlsSettings = Pick<Settings, 'certfile' | 'keyfile' | 'caCerts' | 'certReqs' | 'ciphers' | 'sslMinVersion'>;

/** Why an engine (on a runtime) cannot do a part of TLS; an absent reason means it can. */
export interface TlsLimits {
  /** It cannot serve TLS at all. */
  tls?: string;
  /** It cannot ask for and verify client certificates (--cert-reqs 1 and 2). */
  clientCertificates?: string;
  /** It cannot refuse a client certificate that does not verify while accepting clients without one (--cert-reqs 1). */
  optionalClientCertificates?: string;
  /** It cannot restrict the ciphers (--ciphers). */
  ciphers?: string;
  /** It cannot refuse TLS 1.2 (--ssl-min-version TLSv1.3). */
  minVersionTls13?: string;
  /** It cannot offer HTTP/2 by ALPN when a PROXY header comes before the handshake (h2 with --proxy-protocol). */
  http2AfterProxyHeader?: string;
}

/** Reads a TLS file; a ConfigError naming the setting and the file when it cannot. */
function readPem(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * The TLS options of a configuration, with the files read now, or undefined when TLS is off (no --certfile);
 * `alpnProtocols` is what ALPN offers. A ConfigError when a file cannot be read.
 */
export function tlsOptionsFrom(settings: TlsSettings, alpnProtocols?: string[]): TlsOptions | undefined {
  if (settings.certfile === null || settings.keyfile === null) return undefined;
  return {
    cert: readPem('--certfile', settings.certfile),
    key: readPem('--keyfile', settings.keyfile),
    ...(settings.caCerts !== null ? { ca: readPem('--ca-certs', settings.caCerts) } : {}),
    requestCert: settings.certReqs > 0,
    rejectUnauthorized: settings.certReqs === 2,
    verifySentCertificate: settings.certReqs === 1,
    ...(settings.ciphers !== null ? { ciphers: settings.ciphers } : {}),
    minVersion: settings.sslMinVersion === 'tlsv1.3' ? 'TLSv1.3' : 'TLSv1.2',
    ...(alpnProtocols ? { ALPNProtocols: alpnProtocols } : {}),
  };
}

/**
 * Whether `identity` may read `file` by its mode bits (owner, group, others; ACLs aside): the workers read the
 * TLS files after they drop privileges (--user, --group), as Gunicorn's do.
 */
function readableBy(file: string, identity: ProcessIdentity): boolean {
  const { mode, uid, gid } = fs.statSync(file);
  if (identity.uid === 0) return true;
  if (uid === identity.uid) return (mode & 0o400) !== 0;
  if (gid === identity.gid || identity.groups.includes(gid)) return (mode & 0o040) !== 0;
  return (mode & 0o004) !== 0;
}

/** The first line of a crypto error (OpenSSL's are long). */
const firstLine = (error: unknown) => (error as Error).message.split('\n')[0];

/**
 * The master's check of the TLS settings before any worker starts (and before a HUP's new workers): the pairs that
 * go together, the files readable (by `workers` too, when they run as another user), the certificate and key PEM
 * that match each other, the CA file PEM, and the cipher list one OpenSSL knows. Throws a ConfigError naming what
 * is wrong; nothing when TLS is off.
 */
export function checkTlsSettings(settings: TlsSettings, workers?: ProcessIdentity): void {
  if (settings.certfile === null) {
    const without = settings.keyfile !== null ? '--keyfile' : settings.caCerts !== null ? '--ca-certs'
      : settings.certReqs !== 0 ? '--cert-reqs' : settings.ciphers !== null ? '--ciphers' : undefined;
    if (without) throw new ConfigError(`${without} is a TLS setting, and TLS is off: it needs --certfile and --keyfile`);
    return;
  }
  if (settings.keyfile === null) throw new ConfigError(`--certfile ${settings.certfile} needs --keyfile, its private key`);
  const options = tlsOptionsFrom(settings)!;
  if (workers) {
    for (const [flag, file] of [['--certfile', settings.certfile], ['--keyfile', settings.keyfile], ['--ca-certs', settings.caCerts]] as const) {
      if (file !== null && !readableBy(file, workers)) {
        throw new ConfigError(`${flag} ${file}: the workers (uid ${workers.uid}, gid ${workers.gid}) cannot read it, and ` +
          'they read it after dropping privileges; make it readable by their user or group (e.g. chgrp and chmod 640)');
      }
    }
  }
  // X509Certificate and createPrivateKey check the files on every runtime (Deno's tls.createSecureContext checks
  // nothing: a mismatched key would only fail at the first handshake).
  let certificate: crypto.X509Certificate;
  let key: crypto.KeyObject;
  try {
    certificate = new crypto.X509Certificate(options.cert);
  } catch (error) {
    throw new ConfigError(`--certfile ${settings.certfile} holds no PEM certificate: ${firstLine(error)}`);
  }
  try {
    key = crypto.createPrivateKey(options.key);
  } catch (error) {
    throw new ConfigError(`--keyfile ${settings.keyfile} holds no unencrypted PEM private key: ${firstLine(error)}`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new ConfigError(`--keyfile ${settings.keyfile} is not the private key of --certfile ${settings.certfile}`);
  }
  if (options.ca !== undefined) {
    try {
      new crypto.X509Certificate(options.ca);
    } catch (error) {
      throw new ConfigError(`--ca-certs ${settings.caCerts} holds no PEM certificate: ${firstLine(error)}`);
    }
  }
  if (options.ciphers !== undefined) {
    try {
      tls.createSecureContext({ ciphers: options.ciphers });
    } catch (error) {
      throw new ConfigError(`invalid value ${JSON.stringify(options.ciphers)} for --ciphers: ${firstLine(error)}`);
    }
  }
}

/** Why `engine` cannot serve these TLS settings, or undefined when it can (or TLS is off). */
export function tlsRefusal(
  settings: TlsSettings & Pick<Settings, 'proxyProtocol' | 'httpProtocols'>, engine: string, limits: TlsLimits,
): string | undefined {
  if (settings.certfile === null) return undefined;
  const refusal = (flag: string, reason: string | undefined) => reason && `${flag}: ${engine} ${reason}`;
  return refusal('--certfile', limits.tls) ??
    (settings.certReqs > 0 ? refusal(`--cert-reqs ${settings.certReqs}`, limits.clientCertificates) : undefined) ??
    (settings.certReqs === 1 ? refusal('--cert-reqs 1', limits.optionalClientCertificates) : undefined) ??
    (settings.ciphers !== null ? refusal('--ciphers', limits.ciphers) : undefined) ??
    (settings.sslMinVersion === 'tlsv1.3' ? refusal('--ssl-min-version TLSv1.3', limits.minVersionTls13) : undefined) ??
    (settings.proxyProtocol !== 'off' && parseHttpProtocols(settings.httpProtocols).includes('h2')
      ? refusal(`--http-protocols ${settings.httpProtocols} with --proxy-protocol`, limits.http2AfterProxyHeader) : undefined);
}

/** What a TLS connection tells of its client's certificate (node:tls's TLSSocket, Bun's sockets). */
export interface PeerCertificateSource {
  readonly authorized: boolean;
  getPeerCertificate(): object | null | undefined;
}

/**
 * Whether a client sent a certificate that does not verify: --cert-reqs 1 refuses such a connection after its
 * handshake, which node:tls and Bun let through when a certificate is optional (they refuse only a missing one).
 */
export function sentUnverifiedCertificate(socket: PeerCertificateSource): boolean {
  if (socket.authorized) return false;
  // No certificate: node:tls gives an empty object, Bun undefined.
  const certificate = socket.getPeerCertificate();
  return certificate !== null && certificate !== undefined && Object.keys(certificate).length > 0;
}

/** The debug line for a connection closed by --cert-reqs 1 after its handshake (sentUnverifiedCertificate()). */
export function unverifiedCertificateLine(ip: string | undefined, reason: unknown): string {
  return `TLS handshake refused: ip=${ip || '-'} sent a client certificate that does not verify (${String(reason)})`;
}
