// Builds scripts/bench/go-load (the Go load generator) once per source version, with Debian's Go and
// grpc-go (scripts/ensure-go-grpc.sh installs them when missing, as for the grpc-go tests), and returns the
// binary's path.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./go-load/main.go', import.meta.url));
const ENSURE = fileURLToPath(new URL('../ensure-go-grpc.sh', import.meta.url));

export function buildGoLoad() {
  const source = readFileSync(SOURCE);
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'trousseau-go-load');
  const binary = join(dir, `go-load-${digest}`);
  if (existsSync(binary)) return binary;
  execFileSync('bash', [ENSURE], { stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(dir, { recursive: true });
  execFileSync('go', ['build', '-o', binary, SOURCE], {
    cwd: dir,
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return binary;
}
