#!/usr/bin/env node
// The load generator, run as its own process: calls one KMS v2 rpc over the socket at a fixed
// concurrency for a fixed time and prints one JSON line: ops/s and latency percentiles in ms.
// Usage: node load.mjs SOCKET encrypt|decrypt CONCURRENCY SECONDS
import { randomBytes } from 'node:crypto';
import { KmsClient } from '@trousseau/core';

const [socket, op, concurrencyText, secondsText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
const client = new KmsClient(socket, { timeoutMs: 10_000 });

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

// Warm-up: connections, JIT, keep-alive pools.
await Promise.all(Array.from({ length: concurrency * 4 }, (_, i) => call(i)));

const latencies = [];
let errors = 0;
let count = 0;
const deadline = performance.now() + seconds * 1000;
const started = performance.now();
async function worker() {
  while (performance.now() < deadline) {
    const t0 = performance.now();
    try {
      await call(count++);
      latencies.push(performance.now() - t0);
    } catch {
      errors += 1;
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
console.log(
  JSON.stringify({
    op,
    concurrency,
    ops: latencies.length,
    errors,
    opsPerSec: latencies.length / elapsed,
    p50: pick(0.5),
    p99: pick(0.99),
  }),
);
client.close();
process.exit(0);
