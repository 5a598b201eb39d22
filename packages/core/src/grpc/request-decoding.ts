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
 * Decodes a request message without ever throwing: a body that is not a valid message of its type
 * becomes a marker that reaches the handler, which answers INVALID_ARGUMENT with a Trousseau code (grpc-js
 * answered a decoder that threw with INTERNAL, which blamed the server for the caller's bytes).
 */
export function decodeTolerantly<T>(decode: (bytes: Buffer) => T, bytes: Buffer): T | UndecodableRequest {
  try {
    return decode(bytes);
  } catch {
    return { [UNDECODABLE]: true };
  }
}
