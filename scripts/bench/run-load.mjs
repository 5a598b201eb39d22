// Runs the load generator (scripts/bench/load.mjs, or a target's own) as a process of its own against one
// running target, and returns the figures it printed.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

function run(command, commandArgs, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${commandArgs.join(' ')} exited ${code}`)),
    );
  });
}

/** One row: `op` at `concurrency` for `seconds` against `target` ({socket, pid, loadScript?}). */
export async function runLoad(root, target, op, concurrency, seconds, authority) {
  const line = await run(
    process.execPath,
    [
      join(root, target.loadScript ?? 'scripts/bench/load.mjs'),
      target.socket,
      op,
      String(concurrency),
      String(seconds),
      String(target.pid ?? ''),
      authority,
    ],
    { cwd: root },
  );
  return JSON.parse(line.trim().split('\n').pop());
}
