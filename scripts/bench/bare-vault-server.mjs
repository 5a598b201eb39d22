#!/usr/bin/env node
// The floor for a KMS plugin in front of Vault: the bare @grpc/grpc-js server of bare-server.mjs, whose
// Encrypt and Decrypt each make one transit request to the Vault emulator over keep-alive HTTP (as
// vault-direct.mjs does) instead of encrypting locally. No Trousseau, no node-vault, no deadlines, no
// retries: what any plugin process between kube-apiserver and Vault pays for the hop. The "trousseau +
// vault" rows are compared against this row for Trousseau's own share.
// Usage: node bare-vault-server.mjs SOCKET '{"url":...,"token":...,"key":...}'
import { Agent } from 'node:http';
import { Server, status } from '@grpc/grpc-js';
import { kmsV2Service, postJson, serveOnSocket } from './bare-kms.mjs';
import { minimalJsonClient } from './minimal-http.mjs';

const [socket, targetJson, client] = process.argv.slice(2);
const target = JSON.parse(targetJson);
const KEY_ID = 'bare:vault';
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const minimalPost = client === 'minimal' ? minimalJsonClient(target.url) : undefined;

/** One transit request (`encrypt` or `decrypt`) for the key; resolves with its `data`. */
async function post(path, body) {
  const transitPath = `/v1/transit/${path}/${target.key}`;
  const answer =
    minimalPost === undefined
      ? await postJson(`${target.url}${transitPath}`, target.token, agent, body)
      : await minimalPost(transitPath, target.token, body);
  return answer.data;
}

const server = new Server();
const failed = (callback) => () => callback({ code: status.UNAVAILABLE, details: 'vault failed' }, null);
server.addService(kmsV2Service(), {
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
serveOnSocket(server, socket);
