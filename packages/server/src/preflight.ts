import { lstat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { ConfigError, type ConfigIssue, type LoadedConfig } from '@trousseau/core';
import { parseListenAddress } from './health-server.js';
import { socketPathProblem } from './socket-file.js';

/** How long the side listener's host may take to resolve and bind before `serve` gives up on it. */
const LISTEN_CHECK_TIMEOUT_MS = 5_000;

/** What {@link preflight} found that does not stop a start but an operator should know. */
interface PreflightReport {
  readonly warnings: readonly ConfigIssue[];
}

/** Why `host` cannot be listened on here (it does not resolve, or is not an address of this machine). */
async function listenProblem(host: string): Promise<string | undefined> {
  const server = createServer();
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`did not resolve within ${LISTEN_CHECK_TIMEOUT_MS / 1000} s`)),
        LISTEN_CHECK_TIMEOUT_MS,
      );
      server.once('error', reject);
      // Port 0: proves the host resolves to an address of this machine without taking the real port,
      // which a running instance may hold.
      server.listen(0, host, () => resolve());
    });
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
      return `host "${host}" does not resolve (${code})`;
    }
    if (code === 'EADDRNOTAVAIL') return `host "${host}" is not an address of this machine`;
    return `host "${host}" cannot be listened on: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * What `serve` refuses about a valid config before it starts anything, beyond the schema: the socket
 * path (length, a file that is not a socket) and a side listener host that does not resolve to this
 * machine. `serve` and `check` both run it, so `check` finds every one of these first. Throws a
 * {@link ConfigError} naming the file and the path of every refusal; returns the warnings: a socket mode
 * that lets a group, or everyone (when `socket.allowOthers` says so), connect.
 */
export async function preflight(loaded: LoadedConfig): Promise<PreflightReport> {
  const { socket, health } = loaded.config;
  const refusals: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const pathProblem = socketPathProblem(socket.path);
  if (pathProblem !== undefined) refusals.push({ path: 'socket.path', message: pathProblem });
  const existing = await lstat(socket.path).catch(() => undefined);
  if (existing !== undefined && !existing.isSocket()) {
    refusals.push({
      path: 'socket.path',
      message: `${socket.path} exists and is not a socket; Trousseau never replaces it: move it away or choose another path`,
    });
  }
  if (health.listen !== undefined) {
    const problem = await listenProblem(parseListenAddress(health.listen).host);
    if (problem !== undefined) refusals.push({ path: 'health.listen', message: problem });
  }
  if (refusals.length > 0) throw new ConfigError(loaded.file, refusals);
  const mode = Number.parseInt(socket.mode, 8);
  if ((mode & 0o007) !== 0) {
    warnings.push({
      path: 'socket.mode',
      message: `"${socket.mode}" lets every user of this machine connect (socket.allowOthers is set), and whoever connects can decrypt every Secret`,
    });
  } else if ((mode & 0o070) !== 0) {
    const group = socket.gid === undefined ? "Trousseau's own group" : `group ${socket.gid}`;
    warnings.push({
      path: 'socket.mode',
      message: `"${socket.mode}" lets ${group} connect, and whoever connects can decrypt every Secret: only the apiserver's user should be in it`,
    });
  }
  return { warnings };
}
