import type { IncomingMessage } from 'node:http';

/**
 * Reads an emulator request's body, refusing more than `maxBytes`: the request is destroyed and the
 * promise rejects with what `tooLarge()` makes (each emulator answers in its service's own error shape).
 */
export function readBody(request: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(tooLarge());
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
