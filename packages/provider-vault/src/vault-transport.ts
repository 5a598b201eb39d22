// node-vault's transport, replacing its default (axios, whose follow-redirects prints every request's
// options, the X-Vault-Token header included, to stderr under DEBUG=*). It plugs into node-vault's
// documented `request-promise` hook and speaks node:http / node:https directly: our keep-alive agents,
// JSON in and out, a per-call timeout, an AbortSignal that tears the request down, and 307/308 redirects
// followed only where the token may safely go. Nothing here logs, and no error it makes holds a header,
// a body or a token.
import {
  request as httpRequest,
  type Agent as HttpAgent,
  type ClientRequest,
  type IncomingMessage,
} from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { urlToHttpOptions } from 'node:url';

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
export class VaultTransportError extends Error {
  override readonly name = 'VaultTransportError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** A redirect the transport refused to follow (or too many of them). */
export const REDIRECT_REFUSED = 'ERR_VAULT_REDIRECT_REFUSED';
/** A 2xx answer whose body is not JSON, or an answer larger than {@link MAX_BODY_BYTES}. */
export const BAD_RESPONSE = 'ERR_VAULT_BAD_RESPONSE';

/** Redirects followed at most per call (a standby pointing at the active node needs one). */
const MAX_REDIRECTS = 2;
/** Transit batches are large but bounded; an answer past this is not Vault's. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface TransportAgents {
  readonly http: HttpAgent;
  /** Replaced when the client certificate is (each request takes the one current at its start). */
  https: HttpsAgent;
  /** A unix socket every request goes to (a Vault Agent or Proxy listener) instead of the URL's host. */
  readonly socketPath?: string | undefined;
}

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

function networkCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : 'ECONNRESET';
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

/** Where one hop goes: the parts of its URL `http.request` needs, worked out once per URL. */
interface Target {
  readonly url: URL;
  readonly https: boolean;
  readonly options: Readonly<ReturnType<typeof urlToHttpOptions>>;
}

function targetOf(url: URL): Target {
  return { url, https: url.protocol === 'https:', options: urlToHttpOptions(url) };
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
 * One HTTP exchange. Settles once: with the answer, or with a {@link VaultTransportError} when the
 * network fails, `timer` fires (ETIMEDOUT) or the signal aborts (ABORT_ERR); both of the latter
 * destroy the request, so its socket is closed rather than returned to the keep-alive pool.
 */
function exchange(
  target: Target,
  method: string,
  headers: Readonly<Record<string, string>>,
  payload: Buffer | undefined,
  agents: TransportAgents,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new VaultTransportError('ABORT_ERR', 'request to Vault aborted'));
      return;
    }
    let req: ClientRequest;
    try {
      const { protocol, hostname, port, path, auth } = target.options;
      // One object of a fixed shape rather than a URL merged with options: the merge cost more than the
      // rest of building the request.
      const options = {
        protocol,
        hostname,
        port,
        path,
        auth,
        method,
        headers,
        agent: target.https ? agents.https : agents.http,
        socketPath: agents.socketPath,
      };
      req = target.https ? httpsRequest(options) : httpRequest(options);
    } catch (error) {
      // Node refuses to build the request (a header with a newline or a non-Latin-1 character, such
      // as a token file with a line break inside): no value is named, only the code.
      const code = networkCode(error);
      reject(
        new VaultTransportError(
          code,
          `request to Vault could not be built (${code}); check the token and headers`,
        ),
      );
      return;
    }
    let settled = false;
    // Everything below is in place before any callback can run (they are all asynchronous).
    const timer = setTimeout(
      () => fail(new VaultTransportError('ETIMEDOUT', 'Vault did not answer in time')),
      Math.max(1, deadline - Date.now()),
    );
    const finish = (outcome: Hop | VaultTransportError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (outcome instanceof VaultTransportError) reject(outcome);
      else resolve(outcome);
    };
    const fail = (error: VaultTransportError): void => {
      finish(error);
      req.destroy();
    };
    const onAbort = (): void => fail(new VaultTransportError('ABORT_ERR', 'request to Vault aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (error: Error) => {
      const code = networkCode(error);
      finish(new VaultTransportError(code, `request to Vault failed (${code})`));
    });
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          fail(new VaultTransportError(BAD_RESPONSE, `Vault's answer exceeds ${MAX_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error: Error) => {
        const code = networkCode(error);
        finish(new VaultTransportError(code, `request to Vault failed (${code})`));
      });
      res.on('end', () => {
        const location = res.headers.location;
        // Vault's answer to a transit call is one chunk: no copy then.
        const raw = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size);
        finish({ statusCode: res.statusCode ?? 0, location, raw });
      });
      res.on('close', () => {
        if (!res.complete) {
          finish(new VaultTransportError('ECONNRESET', 'request to Vault failed (ECONNRESET)'));
        }
      });
    });
    req.end(payload);
  });
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
  agents: TransportAgents,
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
    const hop = await exchange(target, options.method, headers, payload, agents, deadline, options.signal);
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
        agents.socketPath !== undefined
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
 * ignored: bodies are always JSON, and the TLS settings live in the HTTPS agent.
 */
export function vaultTransport(agents: TransportAgents): RequestPromiseHook {
  const targets = new Targets();
  return {
    defaults: () => (options) => send(agents, targets, options),
  };
}
