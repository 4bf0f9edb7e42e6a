/** The TLS options of Bun's servers (Bun.listen, Bun.serve), mapped from node:tls's. */
import type { TlsOptions } from '../tls-options.ts';

/** Bun's `tls` option. */
export interface BunTlsOptions {
  cert: string;
  key: string;
  ca?: string;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  ciphers?: string;
  /** A protocol version number (0x0303 TLS 1.2, 0x0304 TLS 1.3), not node:tls's name. */
  minVersion: number;
  /** ALPN's wire format (each protocol name after its length byte), not node:tls's list of names. */
  ALPNProtocols?: Uint8Array;
}

/** TLS versions as Bun's minVersion takes them: Bun 1.4 refuses node:tls's names ("must be a number"). */
const TLS_VERSION_NUMBERS = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 } as const;

/**
 * A list of protocol names in ALPN's wire format: Bun 1.4 refuses a list ("must be of type string, ArrayBuffer,
 * or null") and takes a string as one protocol name.
 */
function alpnWireFormat(protocols: string[]): Uint8Array {
  return Buffer.concat(protocols.map((protocol) => Buffer.concat([Buffer.from([protocol.length]), Buffer.from(protocol, 'latin1')])));
}

/** Bun's `tls` option for node:tls-shaped options. */
export function bunTlsOptions(options: TlsOptions): BunTlsOptions {
  const { cert, key, ca, requestCert, rejectUnauthorized, ciphers, minVersion, ALPNProtocols } = options;
  return {
    cert, key, requestCert, rejectUnauthorized, minVersion: TLS_VERSION_NUMBERS[minVersion],
    ...(ca !== undefined ? { ca } : {}),
    ...(ciphers !== undefined ? { ciphers } : {}),
    ...(ALPNProtocols ? { ALPNProtocols: alpnWireFormat(ALPNProtocols) } : {}),
  };
}
