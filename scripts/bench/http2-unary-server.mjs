#!/usr/bin/env node
// A measuring stick, not a server to serve with: KMS v2 Encrypt and Decrypt as unary gRPC calls answered
// by node:http2 directly, with no gRPC library: the 5-byte message prefix read by hand and written, and the
// messages coded, by Trousseau's own code (grpc-message-frame.js, kms-codecs.js). It does the baseline's work (AES-256-GCM, bare-answers.mjs),
// or with `at-once` answers fixed bytes as grpc-leg-server.mjs does. Set beside the bare grpc-js baseline,
// it shows what grpc-js's server costs per call and in memory, and so what a Trousseau front-end on
// node:http2 could save.
// What it leaves out, which a real front-end must do: grpc-timeout (deadlines), cancellation, a limit on
// message size, compressed messages, content-type checks, more than one message in a body, a graceful
// stop, and the HTTP/2 settings and session memory limit a grpc-js server sets.
// Usage: node http2-unary-server.mjs SOCKET [at-once]
import { rmSync } from 'node:fs';
import { createServer } from 'node:http2';
import { GRPC_PREFIX_BYTES, frameMessage } from '../../packages/core/dist/src/grpc/grpc-message-frame.js';
import { V2_CODECS } from '../../packages/core/dist/src/grpc/kms-codecs.js';
import { aesGcm, FIXED_ANSWERS } from './bare-answers.mjs';

const [socket, mode] = process.argv.slice(2);
const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK = { 'grpc-status': '0' };
const CANNOT_DECRYPT = { 'grpc-status': '3', 'grpc-message': 'cannot decrypt' };
const UNIMPLEMENTED = { 'grpc-status': '12' };

function answers() {
  if (mode === 'at-once') {
    const { keyId, ciphertext, plaintext } = FIXED_ANSWERS;
    return { keyId, encrypt: () => ciphertext, decrypt: () => plaintext };
  }
  return aesGcm();
}

const { keyId, encrypt, decrypt } = answers();
const methods = {
  '/v2.KeyManagementService/Status': () =>
    V2_CODECS.StatusResponse.encode({ version: 'v2', healthz: 'ok', key_id: keyId }),
  '/v2.KeyManagementService/Encrypt': (message) =>
    V2_CODECS.EncryptResponse.encode({
      ciphertext: encrypt(V2_CODECS.EncryptRequest.decode(message).plaintext),
      key_id: keyId,
      annotations: {},
    }),
  '/v2.KeyManagementService/Decrypt': (message) =>
    V2_CODECS.DecryptResponse.encode({
      plaintext: decrypt(V2_CODECS.DecryptRequest.decode(message).ciphertext),
    }),
};

/** Answers one call: the response message framed, then the trailers. */
function answer(stream, method, chunks) {
  let trailers = OK;
  let frame;
  if (method === undefined) trailers = UNIMPLEMENTED;
  else {
    try {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      frame = frameMessage(
        method(body.subarray(GRPC_PREFIX_BYTES, GRPC_PREFIX_BYTES + body.readUInt32BE(1))),
      );
    } catch {
      trailers = CANNOT_DECRYPT;
    }
  }
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(trailers));
  stream.end(frame);
}

const server = createServer();
server.on('stream', (stream, headers) => {
  const method = methods[headers[':path']];
  const chunks = [];
  stream.on('data', (chunk) => chunks.push(chunk));
  stream.on('end', () => answer(stream, method, chunks));
});
rmSync(socket, { force: true });
server.listen(socket, () => console.log('bare server listening'));
process.on('SIGTERM', () => process.exit(0));
