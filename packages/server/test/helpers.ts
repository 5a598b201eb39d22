import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, silentLogger, type Logger } from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import { registerValue, TOKENS } from '@trousseau/core/wiring';
import localProvider, { createKeyRingFile } from '@trousseau/provider-local';
import {
  faultyProviderDefinition,
  startNodeProcess,
  type FaultyProvider,
  type NodeProcess,
} from '@trousseau/testing';
import { BUILTIN_PROVIDERS, createServerContainer, SERVER_TOKENS, TrousseauServer } from '../src/index.js';

/** The trousseau command as shipped: this package's `bin` (the bundle `pnpm build` writes to dist/bundle). */
export const BIN = fileURLToPath(
  new URL(
    (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        bin: { trousseau: string };
      }
    ).bin.trousseau,
    new URL('../../', import.meta.url),
  ),
);

/** A scratch directory inside the server package, so packages installed for it resolve from there. */
export const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));

export async function scratchDir(prefix = 'trousseau-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface TestServer {
  readonly server: TrousseauServer;
  readonly client: KmsClient;
  readonly faulty: FaultyProvider;
  readonly dir: string;
  readonly keyFile: string;
  readonly socket: string;
  close(): Promise<void>;
}

/**
 * A real Trousseau front-end on a unix socket in a temp dir, with the local provider wrapped so the test
 * can inject backend trouble, and a gRPC client dialled the way kube-apiserver dials.
 */
export async function startTestServer(
  options: {
    kms?: Record<string, unknown>;
    health?: Record<string, unknown>;
    /** `socket.limits` of the config. */
    socketLimits?: Record<string, unknown>;
    drainTimeoutMs?: number;
    logger?: Logger;
    extraProviders?: unknown[];
  } = {},
): Promise<TestServer> {
  const dir = await scratchDir();
  const keyFile = join(dir, 'keys.json');
  await createKeyRingFile(keyFile);
  const socket = join(dir, 'kms.sock');
  const { definition, instances } = faultyProviderDefinition(localProvider);
  const loaded = parseConfig(
    {
      version: 1,
      socket: { path: socket, limits: options.socketLimits ?? {} },
      encryptWith: 'main',
      providers: [
        { name: 'main', type: 'faulty-local', config: { keyFile } },
        ...(options.extraProviders ?? []),
      ],
      kms: options.kms ?? {},
      health: options.health ?? {},
    },
    join(dir, 'config.yaml'),
    dir,
  );
  const container = createServerContainer({ loaded, logger: options.logger ?? silentLogger });
  registerValue(container, TOKENS.builtinProviders, {
    ...BUILTIN_PROVIDERS,
    'faulty-local': async () => ({ default: definition }),
  });
  registerValue(container, SERVER_TOKENS.drainTimeoutMs, options.drainTimeoutMs ?? 2_000);
  const server = await TrousseauServer.fromContainer(container);
  await server.listen();
  const client = new KmsClient(socket, { timeoutMs: 3_000 });
  const faulty = instances.get('main');
  if (faulty === undefined) throw new Error('faulty provider not created');
  return {
    server,
    client,
    faulty,
    dir,
    keyFile,
    socket,
    async close() {
      client.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the trousseau CLI to completion. */
export function runCli(
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A bound for a hung CLI, sized for a loaded CI machine: a CLI that works exits long before it.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `trousseau serve` with `args` as a child process, its output collected. */
export function startServe(args: string[], options: { cwd?: string } = {}): NodeProcess {
  return startNodeProcess(BIN, ['serve', ...args], options);
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * How many KMS connections the test server handed to gRPC, by path (`trousseau_grpc_connections_total`),
 * read from its /metrics: start it with `health: { listen: '127.0.0.1:0' }`.
 */
export async function connectionsServed(t: TestServer): Promise<{ direct: number; rewritten: number }> {
  const address = t.server.healthAddress;
  if (address === undefined) throw new Error('start the test server with health.listen to read its metrics');
  const text = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
  const count = (path: string): number => {
    const line = text
      .split('\n')
      .find((candidate) => candidate.startsWith(`trousseau_grpc_connections_total{path="${path}"} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };
  return { direct: count('direct'), rewritten: count('rewritten') };
}
