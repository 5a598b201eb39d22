import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { TrousseauError } from '@trousseau/core';
import nodeVault from 'node-vault';
import type { VaultTlsOptions } from './options.js';
import { VaultConnections, type VaultTlsSettings } from './vault-connections.js';
import {
  BAD_RESPONSE,
  MAX_BODY_BYTES,
  REDIRECT_REFUSED,
  vaultTransport,
  VaultTransportError,
} from './vault-transport.js';

/**
 * How a request to Vault failed, without anything secret: no token, no body, no request config.
 * `aborted`: the caller's signal ended the request (it went away or its deadline passed).
 */
type VaultFailureKind = 'http' | 'network' | 'timeout' | 'aborted' | 'tls' | 'protocol';

/**
 * A failed request to Vault. Holds the status and Vault's error strings only; the response body (which
 * for a batch partial failure carries plaintexts) stays in a private field, out of logs and serializers.
 */
export class VaultRequestError extends Error {
  override readonly name = 'VaultRequestError';
  readonly kind: VaultFailureKind;
  /** HTTP status for `http` failures. */
  readonly status: number | undefined;
  /** Vault's `errors` strings. */
  readonly vaultErrors: readonly string[];
  /** The network error code (`ECONNREFUSED`, `ECONNRESET`, a TLS code), when there is one. */
  readonly errorCode: string | undefined;
  readonly #body: unknown;

  constructor(
    kind: VaultFailureKind,
    message: string,
    details: { status?: number; vaultErrors?: readonly string[]; errorCode?: string; body?: unknown } = {},
  ) {
    super(message);
    this.kind = kind;
    this.status = details.status;
    this.vaultErrors = details.vaultErrors ?? [];
    this.errorCode = details.errorCode;
    this.#body = details.body;
  }

  /** The response body of an `http` failure (a 400 batch partial failure keeps its results here). */
  responseBody(): unknown {
    return this.#body;
  }

  /** Vault's first error string, or the status. */
  get vaultMessage(): string {
    return this.vaultErrors[0]?.trim() ?? `HTTP ${this.status ?? '?'}`;
  }
}

/** The part of node-vault's client this provider uses. */
interface NodeVaultClient {
  token: string | undefined;
  namespace: string | undefined;
  pathPrefix: string;
  endpoint: string;
  read(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>;
  write(path: string, data: unknown, requestOptions?: Record<string, unknown>): Promise<unknown>;
}

interface VaultHttpOptions {
  readonly address: string;
  readonly namespace: string | undefined;
  readonly tls: VaultTlsOptions | undefined;
  readonly configDir: string;
}

interface VaultCallOptions {
  /** The Vault token to send; none for login and health. */
  readonly token?: string;
  /** Milliseconds the request may take (redirects included) before it is destroyed. */
  readonly timeoutMs: number;
  /** Destroys the request in flight when it aborts (the caller went away or ran out of time). */
  readonly signal?: AbortSignal;
}

const TLS_ERROR_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

function vaultErrorsOf(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const errors = (body as { errors?: unknown }).errors;
  return Array.isArray(errors) ? errors.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * Turns whatever node-vault or its transport threw into a {@link VaultRequestError}: node-vault's
 * `ApiResponseError` (an answer other than 200/204: `response.statusCode` and the decoded body) or a
 * {@link VaultTransportError} (no answer: a network/TLS code, `ETIMEDOUT`, `ABORT_ERR`, a refused
 * redirect). The original error is dropped: only its status, Vault's strings and its code are kept.
 */
export function toVaultRequestError(error: unknown): VaultRequestError {
  if (error instanceof VaultRequestError) return error;
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  if (response !== undefined && typeof response.statusCode === 'number') {
    const vaultErrors = vaultErrorsOf(response.body);
    const message = vaultErrors[0]?.trim() ?? `HTTP ${response.statusCode}`;
    return new VaultRequestError('http', `Vault answered ${response.statusCode}: ${message}`, {
      status: response.statusCode,
      vaultErrors,
      body: response.body,
    });
  }
  if (!(error instanceof VaultTransportError)) {
    // node-vault's own failures (no response, schema validation): their messages hold no secret.
    const text = error instanceof Error ? error.message : String(error);
    return new VaultRequestError('protocol', `request to Vault failed: ${text.slice(0, 200)}`);
  }
  const code = error.code;
  if (code === 'ETIMEDOUT') {
    return new VaultRequestError('timeout', 'Vault did not answer in time', { errorCode: code });
  }
  if (code === 'ABORT_ERR') {
    return new VaultRequestError('aborted', 'request to Vault abandoned by its caller', { errorCode: code });
  }
  if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') {
    // The request could not be built: a token or header with a character HTTP forbids (a line break
    // inside a token file, say). A configuration problem, reported without the value.
    return new VaultRequestError('protocol', error.message, { errorCode: code });
  }
  if (code.startsWith('HPE_')) {
    // The answer broke HTTP/1.1's framing (the parser's code says how): a reply, but not one to read.
    return new VaultRequestError('protocol', `Vault's answer could not be read (${code})`, {
      errorCode: code,
    });
  }
  if (code === REDIRECT_REFUSED || code === BAD_RESPONSE) {
    return new VaultRequestError('protocol', error.message, { errorCode: code });
  }
  if (
    TLS_ERROR_CODES.has(code) ||
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_OSSL')
  ) {
    return new VaultRequestError('tls', `TLS with Vault failed (${code})`, { errorCode: code });
  }
  return new VaultRequestError('network', `Vault unreachable (${code})`, { errorCode: code });
}

async function readTlsFile(
  configDir: string,
  path: string,
  what: string,
  code: 'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID' | 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
): Promise<Buffer> {
  const absolute = isAbsolute(path) ? path : resolve(configDir, path);
  try {
    return await readFile(absolute);
  } catch (error) {
    throw new TrousseauError(code, `vault: cannot read tls.${what} ${absolute}`, {
      cause: new Error((error as NodeJS.ErrnoException).code ?? 'read failed'),
    });
  }
}

/** The TLS settings of the config, with the client certificate in use. */
function tlsSettings(
  tls: VaultTlsOptions | undefined,
  ca: Buffer | undefined,
  client: ClientCertificate | undefined,
): VaultTlsSettings {
  return {
    ca,
    cert: client?.cert,
    key: client?.key,
    serverName: tls?.serverName,
    // Verification is on unless the config turns it off explicitly; VAULT_SKIP_VERIFY is not read.
    rejectUnauthorized: tls?.insecureSkipVerify !== true,
  };
}

interface ClientCertificate {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * Vault over HTTP(S) through node-vault: one client on our own transport ({@link vaultTransport} over
 * {@link VaultConnections}: keep-alive connections, the TLS settings on the https ones), a token per call
 * instead of node-vault's shared `token` field, and failures turned into {@link VaultRequestError}. Each
 * call is bounded by its timeout and torn down when its signal aborts.
 */
export class VaultHttp {
  readonly #client: NodeVaultClient;
  readonly #connections: VaultConnections;
  readonly #options: VaultHttpOptions;
  readonly #ca: Buffer | undefined;
  #clientCertificate: ClientCertificate | undefined;

  private constructor(
    client: NodeVaultClient,
    connections: VaultConnections,
    options: VaultHttpOptions,
    ca: Buffer | undefined,
    clientCertificate: ClientCertificate | undefined,
  ) {
    this.#client = client;
    this.#connections = connections;
    this.#options = options;
    this.#ca = ca;
    this.#clientCertificate = clientCertificate;
  }

  static async open(options: VaultHttpOptions): Promise<VaultHttp> {
    const tls = options.tls;
    const config = 'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID';
    const [ca, cert, key] = await Promise.all([
      tls?.caFile === undefined ? undefined : readTlsFile(options.configDir, tls.caFile, 'caFile', config),
      tls?.certFile === undefined
        ? undefined
        : readTlsFile(options.configDir, tls.certFile, 'certFile', config),
      tls?.keyFile === undefined ? undefined : readTlsFile(options.configDir, tls.keyFile, 'keyFile', config),
    ]);
    const clientCertificate = cert === undefined || key === undefined ? undefined : { cert, key };
    // A Vault Agent or Proxy listening on a unix socket: requests go to the socket, with this host name.
    const socketPath = options.address.startsWith('unix://')
      ? options.address.slice('unix://'.length)
      : undefined;
    const connections = new VaultConnections({
      socketPath,
      tls: tlsSettings(tls, ca, clientCertificate),
      maxBodyBytes: MAX_BODY_BYTES,
    });
    const client = (nodeVault as unknown as (config: Record<string, unknown>) => NodeVaultClient)({
      endpoint: socketPath === undefined ? options.address : 'http://localhost',
      apiVersion: 'v1',
      // Our transport instead of axios (whose follow-redirects traces request headers, the token
      // included, under DEBUG=*); it ignores rpDefaults: the TLS settings live in the connections.
      'request-promise': vaultTransport(connections),
      // node-vault traces every request body (`write %o to %s`: plaintexts, secret_ids, JWTs) through the
      // `debug` package, which DEBUG=node-vault or DEBUG=* sends to stderr: give it a tracer that drops all.
      debug: () => undefined,
    });
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX from the environment: the
    // config file is the only source here, and the token is passed per call.
    client.token = '';
    client.namespace = options.namespace ?? '';
    client.pathPrefix = '';
    client.endpoint = socketPath === undefined ? options.address : 'http://localhost';
    return new VaultHttp(client, connections, options, ca, clientCertificate);
  }

  /**
   * Reads `tls.certFile` and `tls.keyFile` again and, when they changed (cert-manager renewed them),
   * presents the new certificate from the next connection on. Returns whether it changed. Throws when the
   * files cannot be read or do not form a pair (the one in use stays).
   */
  async reloadClientCertificate(): Promise<boolean> {
    const tls = this.#options.tls;
    if (tls?.certFile === undefined || tls.keyFile === undefined) return false;
    const code = 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED';
    const [cert, key] = await Promise.all([
      readTlsFile(this.#options.configDir, tls.certFile, 'certFile', code),
      readTlsFile(this.#options.configDir, tls.keyFile, 'keyFile', code),
    ]);
    const current = this.#clientCertificate;
    if (current !== undefined && current.cert.equals(cert) && current.key.equals(key)) return false;
    try {
      createSecureContext({ cert, key });
    } catch {
      // Caught between the two writes of a rotation, or a bad file: keep the pair in use.
      throw new TrousseauError(
        code,
        `vault: tls.certFile and tls.keyFile do not hold a certificate and its key (being rotated?)`,
      );
    }
    this.#connections.replaceTls(tlsSettings(tls, this.#ca, { cert, key }));
    this.#clientCertificate = { cert, key };
    return true;
  }

  #requestOptions(options: VaultCallOptions): Record<string, unknown> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers['X-Vault-Token'] = options.token;
    // node-vault spreads these into the options it hands the transport (TransportRequest).
    return {
      headers,
      timeout: Math.max(1, Math.ceil(options.timeoutMs)),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
  }

  async read(path: string, options: VaultCallOptions): Promise<unknown> {
    try {
      return await this.#client.read(path, this.#requestOptions(options));
    } catch (error) {
      throw toVaultRequestError(error);
    }
  }

  async write(path: string, body: unknown, options: VaultCallOptions): Promise<unknown> {
    try {
      return await this.#client.write(path, body, this.#requestOptions(options));
    } catch (error) {
      throw toVaultRequestError(error);
    }
  }

  /** Closes the idle keep-alive connections, and each busy one after its answer. */
  close(): void {
    this.#connections.close();
  }
}
