import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from '@trousseau/testing';
import { repoPath } from './paths.js';

let description: string | undefined;

/**
 * Runs scripts/ensure-prometheus.sh (the machine's prometheus and promtool when they run, else Debian's
 * `prometheus` package) once, and returns its description of the binaries that will run.
 */
export function ensurePrometheus(): string {
  if (description === undefined) {
    const output = execFileSync('bash', [repoPath('scripts', 'ensure-prometheus.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    description = output.trim().split('\n').at(-1) ?? 'unknown prometheus';
  }
  return description;
}

export interface ToolResult {
  readonly code: number | null;
  /** stdout and stderr together, as promtool prints its findings on both. */
  readonly output: string;
}

/** Runs `promtool ARGS` to completion in `cwd`. */
export function promtool(args: readonly string[], cwd?: string): ToolResult {
  ensurePrometheus();
  const result = spawnSync('promtool', args, {
    cwd,
    encoding: 'utf8',
    // A bound for a hung promtool, sized for a loaded machine: a rules test takes well under a second.
    timeout: 60_000,
  });
  if (result.error !== undefined) throw result.error;
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

/** A free TCP port on 127.0.0.1 (free when asked: the caller retries if another process takes it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** One alert as Prometheus's `/api/v1/alerts` shows it. */
export interface ApiAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly state: 'pending' | 'firing';
}

/** One alerting rule as `/api/v1/rules` shows it. */
export interface ApiAlertingRule {
  readonly name: string;
  readonly type: string;
  readonly state: 'inactive' | 'pending' | 'firing';
  readonly health: string;
  readonly lastError?: string;
}

export interface RunningPrometheus {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Everything the process printed so far (for failure messages). */
  output(): string;
  /** GET `/api/v1/PATH` with `params`: the parsed body and the HTTP status. */
  api(path: string, params?: Readonly<Record<string, string>>): Promise<{ status: number; body: ApiBody }>;
  /** An instant query; throws with Prometheus's error when it fails (a parse error, say). */
  query(expr: string): Promise<QueryResult[]>;
  alerts(): Promise<ApiAlert[]>;
  alertingRules(): Promise<ApiAlertingRule[]>;
  stop(): Promise<void>;
}

export interface ApiBody {
  readonly status: 'success' | 'error';
  readonly data?: unknown;
  readonly errorType?: string;
  readonly error?: string;
}

export interface QueryResult {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

/**
 * Starts a real Prometheus on 127.0.0.1 (a free port) with `config` (prometheus.yml text; relative paths in
 * it resolve against `dir`), its data in a temporary directory removed by `stop()`, and waits until it is
 * ready. `dir` must exist and hold the files the config names.
 */
export async function startPrometheus(dir: string, config: string): Promise<RunningPrometheus> {
  ensurePrometheus();
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  let lastFailure = '';
  // The port is free when chosen; another process may take it first, so a start that loses it is retried.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    const started = await tryStart(configFile, port);
    if (started.running !== undefined) return started.running;
    lastFailure = started.output;
    if (!/address already in use/.test(started.output)) break;
  }
  throw new Error(`prometheus did not start; its output:\n${lastFailure}`);
}

async function tryStart(
  configFile: string,
  port: number,
): Promise<{ running?: RunningPrometheus; output: string }> {
  const data = mkdtempSync(join(tmpdir(), 'trousseau-prometheus-'));
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${data}`,
      // Loopback only; no lifecycle or admin API (they are off unless enabled).
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on('close', () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM');
    await exit;
    rmSync(data, { recursive: true, force: true });
  };

  const api = async (
    path: string,
    params: Readonly<Record<string, string>> = {},
  ): Promise<{ status: number; body: ApiBody }> => {
    const response = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
    return { status: response.status, body: (await response.json()) as ApiBody };
  };
  const running: RunningPrometheus = {
    url,
    output: () => output,
    api,
    async query(expr) {
      const { status, body } = await api('query', { query: expr });
      if (status !== 200 || body.status !== 'success') {
        throw new Error(`query ${JSON.stringify(expr)} failed (${status}): ${body.errorType}: ${body.error}`);
      }
      return (body.data as { result: QueryResult[] }).result;
    },
    async alerts() {
      const { body } = await api('alerts');
      return (body.data as { alerts: ApiAlert[] }).alerts;
    },
    async alertingRules() {
      const { body } = await api('rules', { type: 'alert' });
      return (body.data as { groups: { rules: ApiAlertingRule[] }[] }).groups.flatMap((group) => group.rules);
    },
    stop,
  };

  try {
    // Bounds for a process that never gets there, sized for a loaded CI machine.
    await waitUntil(
      async () => {
        if (exited) return true;
        try {
          return (await fetch(`${url}/-/ready`)).status === 200;
        } catch {
          return false;
        }
      },
      'prometheus is ready',
      { timeoutMs: 60_000, intervalMs: 50 },
    );
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}; its output:\n${output}`);
  }
  if (exited) {
    await stop();
    return { output };
  }
  return { running, output };
}
