/**
 * An error the emulator answers with, in the AWS JSON 1.1 shape `{"__type": type, "message": message}`.
 * Status codes follow the AWS KMS API reference: client errors are 400 on the wire (even where the Smithy
 * model's `httpError` trait says 404/409, which JSON 1.1 clients do not read), KMSInternalException and
 * KeyUnavailableException 500, DependencyTimeoutException 503.
 */
export class KmsError extends Error {
  override readonly name = 'KmsError';
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }

  toBody(): string {
    return JSON.stringify({ __type: this.type, message: this.message });
  }
}
