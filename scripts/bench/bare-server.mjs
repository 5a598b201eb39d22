#!/usr/bin/env node
// The baseline: a bare @grpc/grpc-js server for the same KMS v2 service on a unix socket, with handlers
// that do no work (Encrypt echoes, Decrypt echoes). What Trousseau costs is measured against this.
// Usage: node bare-server.mjs SOCKET
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { kmsServices } from '@trousseau/core/grpc';

const socket = process.argv[2];
const server = new Server();
server.addService(kmsServices().v2.service, {
  Status: (_call, callback) => callback(null, { version: 'v2', healthz: 'ok', key_id: 'bare' }),
  Encrypt: (call, callback) =>
    callback(null, { ciphertext: call.request.plaintext, key_id: 'bare', annotations: {} }),
  Decrypt: (call, callback) => callback(null, { plaintext: call.request.ciphertext }),
});
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
  console.log('bare server listening');
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
