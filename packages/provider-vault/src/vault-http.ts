import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isAbsolute, resolve } from 'node:path';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { TrousseauError } from '@trousseau/core';
import nodeVault from 'node-vault';
import type { VaultTlsOptions } from './options.js';

/** How a request to Vault failed, without anything secret: no token, no body, no request config. */
export type VaultFailureKind = 'http' | 'network' | 'timeout' | 'tls' | 'protocol';

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

export interface VaultHttpOptions {
  readonly address: string;
  readonly namespace: string | undefined;
  readonly tls: VaultTlsOptions | undefined;
  readonly configDir: string;
}

export interface VaultCallOptions {
  /** The Vault token to send; none for login and health. */
  readonly token?: string;
  /** Milliseconds the request may take before it is abandoned (axios `timeout`). */
  readonly timeoutMs: number;
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

function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== 'ERR_BAD_REQUEST' && code !== 'ERR_BAD_RESPONSE') return code;
  const cause = (error as { cause?: unknown }).cause;
  return cause === error ? undefined : errorCodeOf(cause);
}

function vaultErrorsOf(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const errors = (body as { errors?: unknown }).errors;
  return Array.isArray(errors) ? errors.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * Turns whatever node-vault (and axios under it) threw into a {@link VaultRequestError}. The original
 * error is dropped on purpose: axios errors carry the request config, headers included (the token).
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
  const code = errorCodeOf(error);
  const text = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || /timeout of \d+ms exceeded/.test(text)) {
    return new VaultRequestError('timeout', 'Vault did not answer in time', {
      errorCode: code ?? 'ETIMEDOUT',
    });
  }
  if (
    code !== undefined &&
    (TLS_ERROR_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))
  ) {
    return new VaultRequestError('tls', `TLS with Vault failed (${code})`, { errorCode: code });
  }
  if (code !== undefined) {
    return new VaultRequestError('network', `Vault unreachable (${code})`, { errorCode: code });
  }
  return new VaultRequestError('protocol', `request to Vault failed: ${text.slice(0, 200)}`);
}

async function readTlsFile(configDir: string, path: string, what: string): Promise<Buffer> {
  const absolute = isAbsolute(path) ? path : resolve(configDir, path);
  try {
    return await readFile(absolute);
  } catch (error) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID',
      `vault: cannot read tls.${what} ${absolute}`,
      {
        cause: new Error((error as NodeJS.ErrnoException).code ?? 'read failed'),
      },
    );
  }
}

/**
 * Vault over HTTP(S) through node-vault: one client, keep-alive agents (TLS settings on the HTTPS one),
 * a token per call instead of node-vault's shared `token` field, and failures turned into
 * {@link VaultRequestError}. node-vault forwards no AbortSignal to axios, so each call is bounded by
 * axios' `timeout` and callers race their own signal on top.
 */
export class VaultHttp {
  readonly #client: NodeVaultClient;
  readonly #httpAgent: HttpAgent;
  readonly #httpsAgent: HttpsAgent;

  private constructor(client: NodeVaultClient, httpAgent: HttpAgent, httpsAgent: HttpsAgent) {
    this.#client = client;
    this.#httpAgent = httpAgent;
    this.#httpsAgent = httpsAgent;
  }

  static async open(options: VaultHttpOptions): Promise<VaultHttp> {
    const tls = options.tls;
    const [ca, cert, key] = await Promise.all([
      tls?.caFile === undefined ? undefined : readTlsFile(options.configDir, tls.caFile, 'caFile'),
      tls?.certFile === undefined ? undefined : readTlsFile(options.configDir, tls.certFile, 'certFile'),
      tls?.keyFile === undefined ? undefined : readTlsFile(options.configDir, tls.keyFile, 'keyFile'),
    ]);
    const agentOptions = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: 64, maxFreeSockets: 16 };
    const httpAgent = new HttpAgent(agentOptions);
    const httpsAgent = new HttpsAgent({
      ...agentOptions,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(tls?.serverName === undefined ? {} : { servername: tls.serverName }),
      // Verification is on unless the config turns it off explicitly; VAULT_SKIP_VERIFY is not read.
      rejectUnauthorized: tls?.insecureSkipVerify !== true,
      ...(tls?.serverName === undefined
        ? {}
        : {
            // Check Vault's certificate against serverName, not the host of the address.
            checkServerIdentity: (_host: string, peer: PeerCertificate) =>
              checkServerIdentity(tls.serverName ?? '', peer),
          }),
    });
    const client = (nodeVault as unknown as (config: Record<string, unknown>) => NodeVaultClient)({
      endpoint: options.address,
      apiVersion: 'v1',
      // node-vault reads VAULT_SKIP_VERIFY into strictSSL; this provider's TLS settings live in its agent.
      rpDefaults: { strictSSL: true },
      // node-vault traces every request body (`write %o to %s`: plaintexts, secret_ids, JWTs) through the
      // `debug` package, which DEBUG=node-vault or DEBUG=* sends to stderr: give it a tracer that drops all.
      debug: () => undefined,
    });
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX from the environment: the
    // config file is the only source here, and the token is passed per call.
    client.token = '';
    client.namespace = options.namespace ?? '';
    client.pathPrefix = '';
    client.endpoint = options.address;
    return new VaultHttp(client, httpAgent, httpsAgent);
  }

  #requestOptions(options: VaultCallOptions): Record<string, unknown> {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers['X-Vault-Token'] = options.token;
    return {
      headers,
      timeout: Math.max(1, Math.ceil(options.timeoutMs)),
      httpAgent: this.#httpAgent,
      httpsAgent: this.#httpsAgent,
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

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}
