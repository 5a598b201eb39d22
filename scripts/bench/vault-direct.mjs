#!/usr/bin/env node
// The Vault emulator measured alone: the same load shape as load.mjs, but each call is one transit
// request straight to the emulator over keep-alive HTTP, no Trousseau in between. Its p50 at
// concurrency 1 is the emulator's own latency, which the Vault rows are compared against.
// Usage: node vault-direct.mjs '{"url":...,"token":...,"key":...}' encrypt|decrypt CONCURRENCY SECONDS
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';

const [targetJson, op, concurrencyText, secondsText] = process.argv.slice(2);
const target = JSON.parse(targetJson);
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(path, body) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      `${target.url}/v1/${path}`,
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
          res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const plaintext = randomBytes(32).toString('base64');
const pool = await Promise.all(
  Array.from(
    { length: 64 },
    async () => (await post(`transit/encrypt/${target.key}`, { plaintext })).data.ciphertext,
  ),
);
const call =
  op === 'encrypt'
    ? () => post(`transit/encrypt/${target.key}`, { plaintext })
    : (i) => post(`transit/decrypt/${target.key}`, { ciphertext: pool[i % pool.length] });

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
agent.destroy();
