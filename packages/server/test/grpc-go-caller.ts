import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// The grpc-go client of fixtures/grpc-go-caller: built once per source version with Debian's Go and
// grpc-go (scripts/ensure-go-grpc.sh installs them when missing), then driven over stdin and stdout.

const SOURCE = fileURLToPath(new URL('../../test/fixtures/grpc-go-caller/main.go', import.meta.url));
const ENSURE = fileURLToPath(new URL('../../../../scripts/ensure-go-grpc.sh', import.meta.url));

/** Installs what is missing and builds the caller; returns the binary's path and what built it. */
export function buildGrpcGoCaller(): { binary: string; toolchain: string } {
  const toolchain = execFileSync('bash', [ENSURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop();
  const source = readFileSync(SOURCE);
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'trousseau-grpc-go-caller');
  mkdirSync(dir, { recursive: true });
  const binary = join(dir, `grpc-go-caller-${digest}`);
  if (!existsSync(binary)) {
    execFileSync('go', ['build', '-o', binary, SOURCE], {
      cwd: dir,
      env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  return { binary, toolchain: toolchain ?? 'unknown' };
}

export interface GoAnswer {
  readonly code: number;
  readonly message: string;
  readonly response: Buffer;
}

/** One grpc-go client process: one ClientConn, so one HTTP/2 connection, for every call sent to it. */
export class GrpcGoCaller {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, (answer: GoAnswer) => void>();
  readonly #exited: Promise<number | null>;
  #nextId = 1;
  #stderr = '';

  constructor(binary: string, socket: string, options: { concurrency: number; authority?: string }) {
    const args = [socket, String(options.concurrency)];
    if (options.authority !== undefined) args.push(options.authority);
    this.#child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const parsed = JSON.parse(line) as { id: number; code: number; message: string; response: string };
      const settle = this.#pending.get(parsed.id);
      this.#pending.delete(parsed.id);
      settle?.({ code: parsed.code, message: parsed.message, response: Buffer.from(parsed.response, 'hex') });
    });
    this.#exited = new Promise((resolve) => this.#child.once('close', resolve));
    void this.#exited.then((code) => {
      for (const settle of this.#pending.values()) {
        settle({
          code: -1,
          message: `grpc-go-caller exited ${code}: ${this.#stderr}`,
          response: Buffer.alloc(0),
        });
      }
      this.#pending.clear();
    });
  }

  call(method: string, request: Buffer, timeoutMs = 10_000): Promise<GoAnswer> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.stdin.write(
        `${JSON.stringify({ id, method, request: request.toString('hex'), timeoutMs })}\n`,
      );
    });
  }

  /** Ends the input; the process finishes its calls and exits. */
  async close(): Promise<number | null> {
    this.#child.stdin.end();
    return this.#exited;
  }
}
