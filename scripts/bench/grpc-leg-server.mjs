#!/usr/bin/env node
// The gRPC leg of the hop, alone: a bare @grpc/grpc-js server (as bare-server.mjs) whose Encrypt and Decrypt
// answer at once with fixed bytes, no cryptography and no request of their own. Called from grpc-go, its
// p50 is what a call from kube-apiserver into any Node plugin and back costs before the plugin does
// anything; the lone-call measurement sets it beside the floor to show where the hop goes.
// Usage: node grpc-leg-server.mjs SOCKET
import { Server } from '@grpc/grpc-js';
import { FIXED_ANSWERS } from './bare-answers.mjs';
import { kmsV2Service, serveOnSocket } from './bare-kms.mjs';

const socket = process.argv[2];
const { keyId: KEY_ID, ciphertext: CIPHERTEXT, plaintext: PLAINTEXT } = FIXED_ANSWERS;

const server = new Server();
server.addService(kmsV2Service(), {
  Status: (_call, callback) => callback(null, { version: 'v2', healthz: 'ok', key_id: KEY_ID }),
  Encrypt: (_call, callback) => callback(null, { ciphertext: CIPHERTEXT, key_id: KEY_ID, annotations: {} }),
  Decrypt: (_call, callback) => callback(null, { plaintext: PLAINTEXT }),
});
serveOnSocket(server, socket);
