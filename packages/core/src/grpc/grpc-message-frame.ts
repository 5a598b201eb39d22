/**
 * gRPC's length-prefixed message, as every request and answer body carries it: a compressed-flag byte,
 * then the message length as 4 bytes big-endian, then the message.
 */
export const GRPC_PREFIX_BYTES = 5;

/** A message framed for the wire, never compressed (flag 0). */
export function frameMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, GRPC_PREFIX_BYTES);
  return frame;
}
