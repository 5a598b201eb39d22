#!/usr/bin/env node
// The load generator, run as its own process: calls one KMS v2 rpc over the socket at a fixed
// concurrency for a fixed time and prints one JSON line: ops/s and latency percentiles in ms.
// Usage: node load.mjs SOCKET encrypt|decrypt CONCURRENCY SECONDS [SERVER_PID] [AUTHORITY]
// AUTHORITY `socket-path` sends the socket path as :authority, as kube-apiserver before 1.32 does.
import { randomBytes } from 'node:crypto';
import { KmsClient } from '@trousseau/core/grpc';
import { measure } from './measure.mjs';

const [socket, op, concurrencyText, secondsText, pidText, authority] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
const serverPid = pidText === undefined || pidText === '' ? undefined : Number(pidText);
const client = new KmsClient(socket, {
  timeoutMs: 10_000,
  ...(authority === 'socket-path' ? { authority: socket } : {}),
});

await client.status();
// A pool of real ciphertexts for Decrypt, made by the server under test.
const pool = await Promise.all(Array.from({ length: 64 }, () => client.encrypt(randomBytes(32))));
const seed = randomBytes(32);
const call =
  op === 'encrypt'
    ? () => client.encrypt(seed)
    : (i) => {
        const item = pool[i % pool.length];
        return client.decrypt({ ciphertext: item.ciphertext, keyId: item.key_id });
      };

console.log(JSON.stringify(await measure({ op, call, concurrency, seconds, serverPid })));
client.close();
process.exit(0);
