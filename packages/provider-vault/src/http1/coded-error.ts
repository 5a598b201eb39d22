/**
 * An error with a stable `code` and a message that names no header, body or token: the shape of every
 * failure the Vault transport and its HTTP/1.1 client make (their codes are node's, llhttp's or their own).
 */
export class CodedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
