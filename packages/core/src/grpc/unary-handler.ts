import type { Clock } from '../clock.js';
import { outcomeOf, toTrousseauError, TrousseauError } from '../errors.js';
import { truncateForLog, type LogRateLimit } from '../log-limit.js';
import type { Logger } from '../logger.js';
import { LATENCY_BUCKETS, type Metrics } from '../metrics.js';
import type { Outcome } from '../outcome.js';
import type { RequestContext } from '../provider.js';
import { createRequestScope, type RequestScope } from '../request-context.js';
import { toServiceError } from './grpc-status.js';
import type { MessageCodec } from './message-codec.js';
import { decodeTolerantly, isUndecodable } from './request-decoding.js';
import type { ServedMethod } from './stream-call.js';

export interface HandlerDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** The calls in flight; the server cancels them all when a stop runs out of patience. */
  readonly inFlight: Set<RequestScope>;
  /** Holds back repeats of a failure warning (one per api, rpc and code per interval). */
  readonly failureWarnings: LogRateLimit;
}

/** The messages of one method: its request's decoder and its response's encoder. */
interface MethodCodecs<Request, Response> {
  readonly request: MessageCodec<Request>;
  readonly response: MessageCodec<Response>;
}

/**
 * Turns `work` into a served unary method: decodes the request, builds the request context (deadline,
 * cancellation, a logger bound to the uid), maps thrown errors to gRPC statuses, encodes the answer, and
 * records a metric and a debug line per call.
 */
export function unaryHandler<Request, Response>(
  api: 'v2' | 'v1beta1',
  rpc: string,
  deps: HandlerDeps,
  codecs: MethodCodecs<Request, Response>,
  work: (request: Request, context: RequestContext) => Promise<Response>,
  uidOf: (request: Request) => string = () => '',
): ServedMethod {
  // Declared once per rpc; the declarations of every rpc agree, so they share one instrument each.
  const labelNames = ['api', 'rpc', 'outcome'] as const;
  const requests = deps.metrics.counter({
    name: 'grpc_requests_total',
    help: 'KMS gRPC calls by API, rpc and outcome (gRPC status)',
    labelNames,
  });
  const duration = deps.metrics.histogram({
    name: 'grpc_request_duration_seconds',
    help: 'KMS gRPC call latency by API, rpc and outcome (gRPC status)',
    labelNames,
    buckets: LATENCY_BUCKETS,
  });
  // One label set per outcome, made when the outcome first happens: a report takes no allocation.
  const labelsByOutcome = new Map<Outcome, { api: typeof api; rpc: string; outcome: Outcome }>();
  const labelsOf = (outcome: Outcome): { api: typeof api; rpc: string; outcome: Outcome } => {
    let labels = labelsByOutcome.get(outcome);
    if (labels === undefined) {
      labels = { api, rpc, outcome };
      labelsByOutcome.set(outcome, labels);
    }
    return labels;
  };
  // What every call's scope shares: its logger's bindings and the clock's reading.
  const bindings = { api, rpc };
  const now = (): number => deps.clock.now();
  const decode = (bytes: Buffer): Request => codecs.request.decode(bytes);
  const encode = (response: Response): Buffer => {
    try {
      return codecs.response.encode(response as object);
    } catch {
      throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', `the ${api} ${rpc} answer could not be encoded`);
    }
  };
  return (message, call) => {
    const started = deps.clock.now();
    const request = decodeTolerantly(decode, message);
    const undecodable = isUndecodable(request);
    const scope = createRequestScope({
      uid: undecodable ? '' : uidOf(request),
      deadline: call.deadline,
      logger: deps.logger,
      bindings,
      now,
    });
    call.onCancel = () => scope.cancel('the client cancelled the call');
    deps.inFlight.add(scope);
    const finish = (outcome: Outcome, code?: string): void => {
      scope.dispose();
      call.onCancel = undefined;
      deps.inFlight.delete(scope);
      const seconds = (deps.clock.now() - started) / 1000;
      const labels = labelsOf(outcome);
      requests.add(labels);
      duration.observe(labels, seconds);
      // The request's child logger is built on first use: only when the line will be written.
      if (deps.logger.isLevelEnabled?.('debug') ?? true) {
        scope.context.logger.debug({ outcome, code, durationMs: Math.round(seconds * 1000) }, 'kms call');
      }
    };
    const answer = undecodable
      ? Promise.reject(
          new TrousseauError(
            'TROUSSEAU_ERR_REQUEST_INVALID',
            `the request body is not a valid ${api} ${rpc}Request protobuf message`,
          ),
        )
      : work(request, scope.context).then(encode);
    answer.then(
      (encoded) => {
        finish('OK');
        call.respond(null, encoded);
      },
      (error: unknown) => {
        const failure = toTrousseauError(error);
        finish(outcomeOf(failure), failure.code);
        // A caller's fault is in the debug line above; ours is a warning, repeats held back and counted.
        if (failure.fault === 'server') {
          const admitted = deps.failureWarnings.admit(`${api}\0${rpc}\0${failure.code}`);
          if (admitted !== undefined) {
            scope.context.logger.warn(
              {
                code: failure.code,
                err: truncateForLog(failure.message, 512),
                suppressedSinceLast: admitted.suppressed,
              },
              'kms call failed',
            );
          }
        }
        call.respond(toServiceError(failure));
      },
    );
  };
}
