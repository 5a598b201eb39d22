/**
 * What an HTTP/2 `:authority` (or `host`) may hold, as Node's HTTP/2 layer (nghttp2) checks it: the octets
 * of an RFC 3986 authority (unreserved, sub-delims, `:`, `@`, `[`, `]`, `%`). kube-apiserver before 1.32
 * sends the socket path (`/var/run/kms.sock`), which fails this check, and nghttp2 resets the stream with
 * PROTOCOL_ERROR before the gRPC server sees the call (kubernetes#126929).
 */
const AUTHORITY_OCTETS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

/** The authority put in place of one nghttp2 would refuse: what kube-apiserver sends from 1.32 on. */
export const REPLACEMENT_AUTHORITY = 'localhost';

/** Whether nghttp2 accepts `value` (one octet per character) as an authority. */
export function isValidAuthority(value: string): boolean {
  return AUTHORITY_OCTETS.test(value);
}

/** Whether a header field carries an authority that nghttp2 checks. */
export function isAuthorityField(name: string): boolean {
  return name === ':authority' || name === 'host';
}
