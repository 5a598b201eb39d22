#!/usr/bin/env node
// load.mjs and vault-direct.mjs with the calls made from Go (scripts/bench/go-load): grpc-go, the client
// kube-apiserver calls its KMS plugin with, and Go's net/http for the Vault emulator alone. This script
// prepares the requests (real ciphertexts, made by the server under test) and hands them to the Go binary,
// which times the calls. Same arguments as load.mjs; a SOCKET that is JSON ({url, token, key}) is the
// Vault emulator, called directly as vault-direct.mjs does. Given SERVER_PID, the server's CPU per call over
// the measured window (read by the Go binary); no RSS figure.
// Usage: node load-go.mjs SOCKET|TARGET_JSON encrypt|decrypt CONCURRENCY SECONDS [SERVER_PID] [AUTHORITY]
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent } from 'node:http';
import { KmsClient, kmsServices } from '@trousseau/core/grpc';
import { postJson } from './bare-kms.mjs';
import { buildGoLoad } from './go-load.mjs';

const [socket, op, concurrency, seconds, serverPid, authority] = process.argv.slice(2);
const binary = buildGoLoad();
const POOL = 64;

/** Runs the Go load generator with `lines` on its stdin; resolves with the JSON line it prints. */
function runGo(args, lines) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`go-load exited ${code}`)),
    );
    child.stdin.end(`${lines.join('\n')}\n`);
  });
}

let result;
if (socket.startsWith('{')) {
  const target = JSON.parse(socket);
  const agent = new Agent({ keepAlive: true });
  const plaintext = randomBytes(32).toString('base64');
  const encryptPath = `/v1/transit/encrypt/${target.key}`;
  let lines;
  if (op === 'encrypt') lines = [`${encryptPath}\t${JSON.stringify({ plaintext })}`];
  else {
    const made = await Promise.all(
      Array.from({ length: POOL }, () =>
        postJson(`${target.url}${encryptPath}`, target.token, agent, { plaintext }),
      ),
    );
    lines = made.map(
      (answer) =>
        `/v1/transit/decrypt/${target.key}\t${JSON.stringify({ ciphertext: answer.data.ciphertext })}`,
    );
  }
  agent.destroy();
  result = await runGo(['http', target.url, target.token, concurrency, seconds], lines);
} else {
  const v2 = kmsServices().v2.service;
  const client = new KmsClient(socket, {
    timeoutMs: 10_000,
    ...(authority === 'socket-path' ? { authority: socket } : {}),
  });
  // Each request carries a uid, as kube-apiserver's do.
  let method;
  let requests;
  if (op === 'encrypt') {
    method = v2.Encrypt.path;
    requests = Array.from({ length: POOL }, () =>
      v2.Encrypt.requestSerialize({ plaintext: randomBytes(32), uid: randomUUID() }),
    );
  } else {
    method = v2.Decrypt.path;
    const made = await Promise.all(Array.from({ length: POOL }, () => client.encrypt(randomBytes(32))));
    requests = made.map((item) =>
      v2.Decrypt.requestSerialize({
        ciphertext: item.ciphertext,
        uid: randomUUID(),
        key_id: item.key_id,
        annotations: {},
      }),
    );
  }
  client.close();
  result = await runGo(
    [
      'grpc',
      socket,
      method,
      authority === 'socket-path' ? socket : 'localhost',
      concurrency,
      seconds,
      ...(serverPid ? [serverPid] : []),
    ],
    requests.map((request) => request.toString('hex')),
  );
}
console.log(
  JSON.stringify({ ...result, op, serverCpuUsPerCall: result.serverCpuUsPerCall ?? NaN, serverRssMb: NaN }),
);
