/** One decoded header field; name and value hold one octet per character (latin1), as on the wire. */
export interface HeaderField {
  readonly name: string;
  value: string;
  /** Sent as "never indexed": an intermediary must forward it the same way (RFC 7541, 6.2.3). */
  readonly neverIndex: boolean;
}
