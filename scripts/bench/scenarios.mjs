// The benchmark scenarios: each starts a server on a unix socket in `dir` and returns {socket, stop}.
// A context's `nodeArgs`, if any, go to the node of Trousseau's and the bare servers' processes (as
// scripts/bench/promotion.mjs runs them under `--trace-gc-nvp`); those servers also return `output()`,
// all they have printed so far.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startAwsKmsForProvider } from '@trousseau/testing/awskms';
import { startAzureKeyVaultForProvider } from '@trousseau/testing/azure';
import { startVaultEmulator } from '@trousseau/testing/vault';

/** Starts a process; resolves when its output contains `ready`, with the child and its output so far. */
function startProcess(args, ready, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let output = '';
    const onData = (chunk) => {
      output += chunk;
      if (output.includes(ready)) resolve({ child, output: () => output });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => reject(new Error(`exited ${code} before ready:\n${output}`)));
  });
}

function stopper(child) {
  return () =>
    new Promise((resolve) => {
      child.removeAllListeners('close');
      child.once('close', resolve);
      child.kill('SIGTERM');
    });
}

/** Runs `trousseau serve` with the given config object (providers etc.) on a fresh socket. */
export async function startTrousseau({ dir, root, nodeArgs = [] }, name, config, env = {}) {
  const socket = join(dir, `${name}.sock`);
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({ version: 1, socket: { path: socket }, logging: { level: 'warn' }, ...config }),
  );
  const { child, output } = await startProcess(
    [
      ...nodeArgs,
      join(root, 'packages/server/dist/bundle/trousseau.cjs'),
      'serve',
      '--config',
      file,
      '--log-level',
      'info',
    ],
    'trousseau is serving',
    { cwd: root, env: { ...process.env, ...env } },
  );
  return { socket, pid: child.pid, stop: stopper(child), output };
}

/** The embedded default's provider: AES-256-GCM with a key ring file in the bench directory. */
function localProviderConfig(context) {
  return {
    providers: [
      {
        name: 'local',
        type: 'local',
        config: { keyFile: join(context.dir, 'bench-keys.json'), createIfMissing: true },
      },
    ],
  };
}

/** Starts one of the bench's bare servers (`scripts/bench/SCRIPT SOCKET ...args`) on a socket in `dir`. */
async function startBareServer({ dir, root, nodeArgs = [] }, script, socketName, args = []) {
  const socket = join(dir, socketName);
  const { child, output } = await startProcess(
    [...nodeArgs, join(root, 'scripts/bench', script), socket, ...args],
    'bare server listening',
    { cwd: root },
  );
  return { socket, pid: child.pid, stop: stopper(child), output };
}

/**
 * The bare grpc-js server of bare-vault-server.mjs in front of a Vault emulator of its own, making its
 * requests with node:http or (`minimal`) with minimal-http.mjs.
 */
async function startBareVault({ dir, root }, latencyMs, client) {
  const emulator = await startVaultEmulator();
  emulator.createKey('k8s');
  emulator.faults.latencyMs = latencyMs;
  const server = await startBareServer(
    { dir, root },
    'bare-vault-server.mjs',
    `bare-vault-${latencyMs}-${client === 'minimal' ? 'minimal' : 'node-http'}.sock`,
    [
      JSON.stringify({ url: emulator.url, token: emulator.rootToken, key: 'k8s' }),
      ...(client === 'minimal' ? ['minimal'] : []),
    ],
  );
  return {
    ...server,
    async stop() {
      await server.stop();
      await emulator.close();
    },
  };
}

/** Latency the emulators add to every request, standing in for a KMS on the network. */
export const EMULATED_LATENCY_MS = 2;

export const scenarios = [
  {
    name: 'bare grpc-js + AES-256-GCM (baseline)',
    start: (context) => startBareServer(context, 'bare-server.mjs', 'bare.sock'),
  },
  {
    name: 'trousseau + local',
    // Each row runs twice against the same server, back to back: with `localhost` as :authority (as
    // kube-apiserver 1.32+ sends) and with the socket path (as kube-apiserver before 1.32 sends).
    authorities: ['localhost', 'socket-path'],
    start: (context) => startTrousseau(context, 'local', localProviderConfig(context)),
  },
  {
    name: `trousseau + awskms (emulator, ${EMULATED_LATENCY_MS} ms)`,
    async start(context) {
      const { emulator, config, env } = await startAwsKmsForProvider({ latencyMs: EMULATED_LATENCY_MS });
      const target = await startTrousseau(
        context,
        'awskms',
        { providers: [{ name: 'aws', type: 'awskms', config }] },
        env,
      );
      return {
        socket: target.socket,
        pid: target.pid,
        async stop() {
          await target.stop();
          await emulator.close();
        },
      };
    },
  },
  // Vault at 2 ms (a KMS on the network) and at 0 ms: with no timer in the emulator, the difference
  // between "alone" and "trousseau + vault" is Trousseau's own cost, free of the timer's 1 ms granularity.
  ...[EMULATED_LATENCY_MS, 0].flatMap((latencyMs) => [
    {
      name: `vault emulator alone (${latencyMs} ms, direct HTTP, no Trousseau)`,
      async start() {
        const emulator = await startVaultEmulator();
        emulator.createKey('k8s');
        emulator.faults.latencyMs = latencyMs;
        return {
          // The direct load script takes the emulator's address where the others take a socket.
          socket: JSON.stringify({ url: emulator.url, token: emulator.rootToken, key: 'k8s' }),
          loadScript: 'scripts/bench/vault-direct.mjs',
          stop: () => emulator.close(),
        };
      },
    },
    {
      // The floor for any plugin process in front of Vault: a bare grpc-js server making one HTTP
      // request per call. "trousseau + vault" less this row is Trousseau's own share; this row less
      // "alone" is the cost of the hop itself (one more process woken and two more socket writes per call).
      name: `bare grpc-js + vault (emulator, ${latencyMs} ms, one HTTP request per call, no Trousseau)`,
      start: (context) => startBareVault(context, latencyMs, 'node:http'),
    },
    ...[true, false].map((batching) => ({
      name: `trousseau + vault (emulator, ${latencyMs} ms, batching ${batching ? 'on' : 'off'})`,
      async start(context) {
        const emulator = await startVaultEmulator();
        emulator.createKey('k8s');
        emulator.faults.latencyMs = latencyMs;
        const target = await startTrousseau(
          context,
          `vault-${latencyMs}-${batching ? 'batch' : 'single'}`,
          {
            providers: [
              {
                name: 'vault',
                type: 'vault',
                config: {
                  address: emulator.url,
                  keyName: 'k8s',
                  auth: { method: 'token', token: { env: 'BENCH_VAULT_TOKEN' } },
                  batching: { enabled: batching, maxBatchSize: 64 },
                },
              },
            ],
          },
          { BENCH_VAULT_TOKEN: emulator.rootToken },
        );
        return {
          socket: target.socket,
          pid: target.pid,
          async stop() {
            await target.stop();
            await emulator.close();
          },
        };
      },
    })),
  ]),
  {
    name: `trousseau + azure (emulator over TLS, ${EMULATED_LATENCY_MS} ms)`,
    async start(context) {
      const { emulator, config } = await startAzureKeyVaultForProvider({
        dir: context.dir,
        keyName: 'k8s',
        latencyMs: EMULATED_LATENCY_MS,
      });
      const target = await startTrousseau(context, 'azure', {
        providers: [{ name: 'azure', type: 'azure', config }],
      });
      return {
        socket: target.socket,
        pid: target.pid,
        async stop() {
          await target.stop();
          await emulator.close();
        },
      };
    },
  },
];

/**
 * The parts of the hop, measured beside the lone Vault call only: the gRPC leg alone (a bare grpc-js server
 * answering at once, and the same on node:http2 without grpc-js) and the floor with the least HTTP client
 * instead of node:http (against the 0 ms emulator), so that the floor's cost over the emulator alone splits
 * into what grpc-js costs, what node:http costs, and the rest.
 */
export const hopParts = {
  grpcLeg: {
    name: 'bare grpc-js answering at once (the gRPC leg alone, no HTTP request)',
    start: (context) => startBareServer(context, 'grpc-leg-server.mjs', 'grpc-leg.sock'),
  },
  http2Leg: {
    name: 'bare node:http2 answering at once (the gRPC leg without grpc-js)',
    start: (context) => startBareServer(context, 'http2-unary-server.mjs', 'http2-leg.sock', ['at-once']),
  },
  minimalFloor: {
    name: 'bare grpc-js + vault (emulator, 0 ms, one HTTP request per call through a minimal HTTP/1.1 client)',
    start: (context) => startBareVault(context, 0, 'minimal'),
  },
};

/**
 * The baseline's work served without grpc-js (scripts/bench/http2-unary-server.mjs: node:http2 and
 * Trousseau's codecs, gRPC framed by hand), measured beside the baseline in the interleaved rounds: what
 * grpc-js's server costs, and so what a front-end on node:http2 could save. A measuring stick, not a server.
 */
export const http2Reference = {
  name: 'bare node:http2 + AES-256-GCM (no grpc-js; a measuring stick)',
  start: (context) => startBareServer(context, 'http2-unary-server.mjs', 'http2-unary.sock'),
};
