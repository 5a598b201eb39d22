import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLIENT = fileURLToPath(new URL('./hostile-client.js', import.meta.url));

/** A bound for a client that hangs, sized for a loaded machine: one that works ends long before. */
const CLIENT_TIMEOUT_MS = 240_000;

function start(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CLIENT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

function collect(child: ChildProcessWithoutNullStreams): {
  readonly output: () => string;
  readonly errors: () => string;
} {
  let output = '';
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  return { output: () => output, errors: () => errors };
}

function exited(child: ChildProcessWithoutNullStreams, errors: () => string): Promise<void> {
  const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`hostile client exited with ${String(code ?? signal)}: ${errors()}`));
    });
  });
}

/** Runs a battery of the hostile client against `socket` to its end; resolves with what it printed. */
export async function runHostileClient(battery: 'requests', socket: string): Promise<string> {
  const child = start([battery, socket]);
  child.stdin.end();
  const { output, errors } = collect(child);
  await exited(child, errors);
  return output();
}

/** A hostile client holding its connections open until {@link HeldConnections.release}. */
export interface HeldConnections {
  /** Closes every connection; resolves with the client's JSON report. */
  release(): Promise<string>;
}

/** Starts the connections battery; resolves once every connection is open. */
export async function holdConnections(
  socket: string,
  perKind: number,
  streamsPerConnection: number,
): Promise<HeldConnections> {
  const child = start(['connections', socket, String(perKind), String(streamsPerConnection)]);
  const { output, errors } = collect(child);
  const done = exited(child, errors);
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (output().includes('ready\n')) resolve();
    };
    child.stdout.on('data', check);
    done.then(() => reject(new Error(`hostile client ended before it was ready: ${output()}`)), reject);
  });
  return {
    async release() {
      child.stdin.end('go\n');
      await done;
      return output().slice(output().indexOf('ready\n') + 'ready\n'.length);
    },
  };
}
