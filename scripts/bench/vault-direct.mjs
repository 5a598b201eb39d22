#!/usr/bin/env node
// The Vault emulator measured alone: the same load shape as load.mjs, but each call is one transit
// request straight to the emulator over keep-alive HTTP, no Trousseau in between. Its p50 at
// concurrency 1 is the emulator's own latency, which the Vault rows are compared against.
// Usage: node vault-direct.mjs '{"url":...,"token":...,"key":...}' encrypt|decrypt CONCURRENCY SECONDS
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { postJson } from './bare-kms.mjs';
import { measure } from './measure.mjs';

const [targetJson, op, concurrencyText, secondsText] = process.argv.slice(2);
const target = JSON.parse(targetJson);
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const post = (path, body) => postJson(`${target.url}/v1/${path}`, target.token, agent, body);

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

console.log(JSON.stringify(await measure({ op, call, concurrency, seconds })));
agent.destroy();
