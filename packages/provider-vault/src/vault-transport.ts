// node-vault's transport, replacing its default (axios, whose follow-redirects prints every request's
// options, the X-Vault-Token header included, to stderr under DEBUG=*). It plugs into node-vault's
// documented `request-promise` hook and speaks HTTP/1.1 over our own keep-alive connections
// ({@link VaultConnections}): JSON in and out, a per-call timeout, an AbortSignal that tears the request
// down, and 307/308 redirects followed only where the token may safely go. Nothing here logs, and no
// error it makes holds a header, a body or a token.
import { CodedError } from './http1/coded-error.js';
import { ABORTED, Http1ExchangeError, TIMED_OUT, type Http1Request } from './http1/connection-pool.js';
import { requestHead } from './http1/request-head.js';
import { BODY_TOO_LARGE } from './http1/response-parser.js';
import type { VaultConnections } from './vault-connections.js';

/** What node-vault hands its transport for one request (`request-promise` options). */
interface TransportRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** The request body (node-vault sets it for writes); anything else than an object sends no body. */
  readonly json?: unknown;
  /** Milliseconds the whole call (redirects included) may take. */
  readonly timeout?: number;
  /** Aborting it destroys the request in flight. */
  readonly signal?: AbortSignal;
}

/** What node-vault's `handleVaultResponse` reads. */
interface TransportResponse {
  readonly statusCode: number;
  /** The decoded JSON body; undefined when empty (204) or, on an error status, not JSON. */
  readonly body: unknown;
  readonly request: { readonly path: string };
}

type TransportFunction = (options: TransportRequest) => Promise<TransportResponse>;

/** node-vault's `config['request-promise']`: `.defaults(rpDefaults)` gives the request function. */
interface RequestPromiseHook {
  defaults(rpDefaults: Record<string, unknown>): TransportFunction;
}

/**
 * A request that did not get an answer. `code` is a node network or TLS code (`ECONNREFUSED`,
 * `ECONNRESET`, `CERT_HAS_EXPIRED`, ...), `ETIMEDOUT` for the call's timeout, `ABORT_ERR` for the
 * caller's signal, or one of this module's `ERR_VAULT_*` codes. The message names no header or body.
 */
export class VaultTransportError extends CodedError {
  override readonly name = 'VaultTransportError';
}

/** A redirect the transport refused to follow (or too many of them). */
export const REDIRECT_REFUSED = 'ERR_VAULT_REDIRECT_REFUSED';
/** A 2xx answer whose body is not JSON, or an answer larger than {@link MAX_BODY_BYTES}. */
export const BAD_RESPONSE = 'ERR_VAULT_BAD_RESPONSE';

/** Redirects followed at most per call (a standby pointing at the active node needs one). */
const MAX_REDIRECTS = 2;
/** Transit batches are large but bounded; an answer past this is not Vault's. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** `scheme://host` of a URL, for messages: never its path or query. */
function originOf(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/** Why a redirect from `from` to `to` must not be followed (the token header goes along), if it must not. */
function redirectRefusal(from: URL, to: URL): string | undefined {
  if (to.protocol !== 'http:' && to.protocol !== 'https:') return `to a ${to.protocol} URL`;
  if (from.protocol === 'https:' && to.protocol === 'http:') return 'from https to http';
  if (to.hostname !== from.hostname && to.protocol !== 'https:') return 'to another host over plain http';
  return undefined;
}

function decodeBody(statusCode: number, raw: Buffer): { readonly body: unknown } | VaultTransportError {
  if (raw.length === 0) return { body: undefined };
  try {
    return { body: JSON.parse(raw.toString('utf8')) as unknown };
  } catch {
    // An error status keeps its meaning (a proxy's HTML 502 is still a 502); a 2xx must be JSON.
    if (statusCode < 200 || statusCode >= 300) return { body: undefined };
    return new VaultTransportError(BAD_RESPONSE, `Vault answered ${statusCode} with a body that is not JSON`);
  }
}

/** Where one hop goes: its URL and the parts of the request line worked out once per URL. */
interface Target {
  readonly url: URL;
  /** Path and query, as the request line carries them. */
  readonly path: string;
  /** Basic credentials from the URL's user info, as node:http sent them; undefined without any. */
  readonly authorization: string | undefined;
}

function targetOf(url: URL): Target {
  const userInfo =
    url.username === '' && url.password === ''
      ? undefined
      : `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return {
    url,
    path: `${url.pathname}${url.search}`,
    authorization: userInfo === undefined ? undefined : `Basic ${Buffer.from(userInfo).toString('base64')}`,
  };
}

/** URLs parsed at most this many at once: node-vault asks the same few paths (the key's encrypt,
 * decrypt and read, token renewal) over and over; a stray path only costs a parse. */
const MAX_CACHED_TARGETS = 64;

interface Hop {
  readonly statusCode: number;
  readonly location: string | undefined;
  readonly raw: Buffer;
}

/**
 * One HTTP exchange on a pooled connection. Settles with the answer, or with a
 * {@link VaultTransportError} when the network fails, the answer is malformed, the deadline passes
 * (ETIMEDOUT) or the signal aborts (ABORT_ERR); in every such case the connection is destroyed rather
 * than returned to the pool.
 */
async function exchange(
  target: Target,
  method: string,
  headers: Readonly<Record<string, string>>,
  payload: Buffer | undefined,
  connections: VaultConnections,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<Hop> {
  let request: Http1Request;
  try {
    request = {
      method,
      head: requestHead({
        method,
        path: target.path,
        host: target.url.host,
        headers:
          target.authorization === undefined || headers.Authorization !== undefined
            ? headers
            : { ...headers, Authorization: target.authorization },
        contentLength: payload?.length,
      }),
      payload,
    };
  } catch (error) {
    // A header with a line break or a non-Latin-1 character (a token file with a line break inside, say):
    // no value is named, only the code.
    const code = error instanceof Http1ExchangeError ? error.code : 'ERR_INVALID_CHAR';
    throw new VaultTransportError(
      code,
      `request to Vault could not be built (${code}); check the token and headers`,
    );
  }
  try {
    const response = await connections.poolFor(target.url).exchange(request, deadline, signal);
    return { statusCode: response.statusCode, location: response.location, raw: response.body };
  } catch (error) {
    if (!(error instanceof Http1ExchangeError)) throw error;
    if (error.code === ABORTED) throw new VaultTransportError(ABORTED, 'request to Vault aborted');
    if (error.code === TIMED_OUT) throw new VaultTransportError(TIMED_OUT, 'Vault did not answer in time');
    if (error.code === BODY_TOO_LARGE) {
      throw new VaultTransportError(BAD_RESPONSE, `Vault's answer exceeds ${MAX_BODY_BYTES} bytes`);
    }
    throw new VaultTransportError(error.code, `request to Vault failed (${error.code})`);
  }
}

/** The URLs of node-vault's requests, parsed once each (see {@link MAX_CACHED_TARGETS}). */
class Targets {
  readonly #byUri = new Map<string, Target>();

  of(uri: string): Target {
    let target = this.#byUri.get(uri);
    if (target === undefined) {
      target = targetOf(new URL(uri));
      if (this.#byUri.size >= MAX_CACHED_TARGETS) this.#byUri.clear();
      this.#byUri.set(uri, target);
    }
    return target;
  }
}

/** Sends one node-vault request, following at most {@link MAX_REDIRECTS} safe 307/308 redirects. */
async function send(
  connections: VaultConnections,
  targets: Targets,
  options: TransportRequest,
): Promise<TransportResponse> {
  const timeoutMs = options.timeout !== undefined && options.timeout > 0 ? options.timeout : 60_000;
  const deadline = Date.now() + timeoutMs;
  const headers: Record<string, string> = Object.assign({}, options.headers);
  headers.Accept = 'application/json';
  let payload: Buffer | undefined;
  if (typeof options.json === 'object' && options.json !== null) {
    payload = Buffer.from(JSON.stringify(options.json), 'utf8');
    headers['Content-Type'] ??= 'application/json';
    headers['Content-Length'] = String(payload.length);
  }
  const first = targets.of(options.uri);
  let target = first;
  for (let redirects = 0; ; redirects++) {
    const hop = await exchange(
      target,
      options.method,
      headers,
      payload,
      connections,
      deadline,
      options.signal,
    );
    if ((hop.statusCode === 307 || hop.statusCode === 308) && hop.location !== undefined) {
      const url = target.url;
      let next: URL;
      try {
        next = new URL(hop.location, url);
      } catch {
        throw new VaultTransportError(
          REDIRECT_REFUSED,
          `Vault answered ${hop.statusCode} with a bad Location`,
        );
      }
      const refusal =
        connections.socketPath !== undefined
          ? 'from a unix socket'
          : redirects >= MAX_REDIRECTS
            ? `more than ${MAX_REDIRECTS} times`
            : redirectRefusal(url, next);
      if (refusal !== undefined) {
        throw new VaultTransportError(
          REDIRECT_REFUSED,
          `Vault at ${originOf(url)} redirected to ${originOf(next)}: not followed (${refusal})`,
        );
      }
      target = targetOf(next);
      continue;
    }
    const decoded = decodeBody(hop.statusCode, hop.raw);
    if (decoded instanceof VaultTransportError) throw decoded;
    // node-vault tells `sys/health` (whose 429/473/501/503 are answers, not errors) by this path.
    return { statusCode: hop.statusCode, body: decoded.body, request: { path: first.url.pathname } };
  }
}

/**
 * The `request-promise` hook for node-vault. node-vault's `rpDefaults` (`json`, `strictSSL`, ...) are
 * ignored: bodies are always JSON, and the TLS settings live in the connections.
 */
export function vaultTransport(connections: VaultConnections): RequestPromiseHook {
  const targets = new Targets();
  return {
    defaults: () => (options) => send(connections, targets, options),
  };
}
