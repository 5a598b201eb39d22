import type { ServiceDefinition } from '@grpc/grpc-js';

const UNDECODABLE = Symbol('trousseau.undecodableRequest');

/** What a request that is not a valid protobuf message of its method's type decodes to. */
interface UndecodableRequest {
  readonly [UNDECODABLE]: true;
}

/** Whether a request is the marker of a body that did not decode. */
export function isUndecodable(request: unknown): request is UndecodableRequest {
  return typeof request === 'object' && request !== null && UNDECODABLE in request;
}

/**
 * The service with request decoders that never throw. grpc-js answers a decoder that throws with
 * INTERNAL before any handler runs, which blames the server for the caller's bytes; with these, such a
 * body reaches the handler as a marker, and the handler answers INVALID_ARGUMENT with a Trousseau code.
 */
export function withTolerantDecoders(service: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            return method.requestDeserialize(bytes);
          } catch {
            return { [UNDECODABLE]: true } satisfies UndecodableRequest;
          }
        },
      },
    ]),
  );
}
