/** HTTP/2 error codes (RFC 9113, section 7) that the front-end's connection handling reports. */
type Http2ErrorName = 'PROTOCOL_ERROR' | 'FRAME_SIZE_ERROR' | 'COMPRESSION_ERROR';

/**
 * A client broke HTTP/2 or HPACK in a way that ends its connection (a connection error): the connection
 * is closed, the server and every other connection go on.
 */
export class Http2ProtocolViolation extends Error {
  readonly http2Error: Http2ErrorName;

  constructor(http2Error: Http2ErrorName, message: string) {
    super(message);
    this.name = 'Http2ProtocolViolation';
    this.http2Error = http2Error;
  }
}
