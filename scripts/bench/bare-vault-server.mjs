#!/usr/bin/env node
// The floor for a KMS plugin in front of Vault: the bare @grpc/grpc-js server of bare-server.mjs, whose
// Encrypt and Decrypt each make one transit request to the Vault emulator over keep-alive HTTP (as
// vault-direct.mjs does) instead of encrypting locally. No Trousseau, no node-vault, no deadlines, no
// retries: what any plugin process between kube-apiserver and Vault pays for the hop. The "trousseau +
// vault" rows are compared against this row for Trousseau's own share.
// Usage: node bare-vault-server.mjs SOCKET '{"url":...,"token":...,"key":...}'
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, Server, ServerCredentials, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const [socket, targetJson] = process.argv.slice(2);
const target = JSON.parse(targetJson);
const KEY_ID = 'bare:vault';
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(path, body) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      `${target.url}/v1/transit/${path}/${target.key}`,
      {
        method: 'POST',
        agent,
        headers: {
          'x-vault-token': target.token,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(JSON.parse(text).data) : reject(new Error(`${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const server = new Server();
const proto = fileURLToPath(new URL('../../packages/core/proto/kms-v2.proto', import.meta.url));
const definition = loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true });
const { KeyManagementService } = loadPackageDefinition(definition).v2;
const failed = (callback) => () => callback({ code: status.UNAVAILABLE, details: 'vault failed' }, null);
server.addService(KeyManagementService.service, {
  Status: (_call, callback) => callback(null, { version: 'v2', healthz: 'ok', key_id: KEY_ID }),
  Encrypt: (call, callback) => {
    post('encrypt', { plaintext: Buffer.from(call.request.plaintext).toString('base64') }).then(
      (data) =>
        callback(null, { ciphertext: Buffer.from(data.ciphertext, 'utf8'), key_id: KEY_ID, annotations: {} }),
      failed(callback),
    );
  },
  Decrypt: (call, callback) => {
    post('decrypt', { ciphertext: Buffer.from(call.request.ciphertext).toString('utf8') }).then(
      (data) => callback(null, { plaintext: Buffer.from(data.plaintext, 'base64') }),
      failed(callback),
    );
  },
});
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
  console.log('bare server listening');
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
