// The two character classes of HTTP/1.1's header fields (RFC 9110), shared by the request head we write
// and the answer head we read, so both hold a field to the same rule.

/** The token characters of RFC 9110 5.6.2 (a method, a field name), by character code. */
const TOKEN_CHARS = new Uint8Array(128);
for (const char of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TOKEN_CHARS[char.charCodeAt(0)] = 1;
}

export function isTokenChar(code: number): boolean {
  return code < 128 && TOKEN_CHARS[code] === 1;
}

/**
 * A character a field value may hold (RFC 9110 5.5): visible ASCII, obs-text (Latin-1 past 0x7f), space
 * and tab; never CR, LF, NUL, another control character, DEL, or a character past Latin-1.
 */
export function isFieldValueChar(code: number): boolean {
  return code === 0x09 || (code >= 0x20 && code !== 0x7f && code <= 0xff);
}

/** A whole string that is a token (not empty). */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let at = 0; at < text.length; at++) if (!isTokenChar(text.charCodeAt(at))) return false;
  return true;
}

/** A whole string that may be a field value. */
export function isFieldValue(text: string): boolean {
  for (let at = 0; at < text.length; at++) if (!isFieldValueChar(text.charCodeAt(at))) return false;
  return true;
}
