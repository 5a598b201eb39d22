import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCertificates } from '@trousseau/testing';

// A real etcd for the tests of `trousseau etcd-report`: the machine's etcd, else Debian's etcd-server
// (scripts/ensure-etcd.sh installs it when missing), on 127.0.0.1 only, with a temporary data directory
// and free ports, serving TLS and asking for a client certificate as a control plane's etcd does.

const ENSURE = fileURLToPath(new URL('../../../../scripts/ensure-etcd.sh', import.meta.url));

let binary: { path: string; version: string } | undefined;

/** Installs etcd when missing; returns the binary and its version. */
export function ensureEtcd(): { path: string; version: string } {
  if (binary !== undefined) return binary;
  const last = execFileSync('bash', [ENSURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop();
  const match = /^etcd=(\S+) (\S+)$/.exec(last ?? '');
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new Error(`scripts/ensure-etcd.sh said ${JSON.stringify(last)}`);
  }
  binary = { path: match[1], version: match[2] };
  return binary;
}

/** `count` distinct free ports on 127.0.0.1: all held open together, then released for etcd. */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => {
              const address = server.address();
              if (address === null || typeof address === 'string') reject(new Error('no port'));
              else resolve(address.port);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
      ),
    );
  }
}

export interface RunningEtcd {
  /** `https://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Files of the CA, client certificate and client key, for `--cacert`, `--cert`, `--key`. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly version: string;
  close(): Promise<void>;
}

function waitForReady(child: ChildProcess, output: { text: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output.text += chunk.toString();
      // etcd 3.4 and 3.5 log this once the client listener accepts (zap logger; capnslog said "ready to
      // serve client requests").
      if (/serving client traffic (securely|insecurely)|ready to serve client requests/.test(output.text)) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      reject(new Error(`etcd exited (code ${String(code)}) before serving:\n${output.text.slice(-4000)}`));
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Starts etcd with TLS and client-certificate authentication, signed by `certificates.ca`. */
export async function startEtcd(certificates: TestCertificates): Promise<RunningEtcd> {
  const { path, version } = ensureEtcd();
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-etcd-'));
  const files = {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
  };
  await Promise.all([
    writeFile(files.ca, certificates.ca),
    writeFile(files.serverCert, certificates.serverCert),
    writeFile(files.serverKey, certificates.serverKey, { mode: 0o600 }),
    writeFile(files.clientCert, certificates.clientCert),
    writeFile(files.clientKey, certificates.clientKey, { mode: 0o600 }),
  ]);
  const [clientPort, peerPort] = await freePorts(2);
  if (clientPort === undefined || peerPort === undefined) throw new Error('no free ports');
  const endpoint = `https://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    path,
    [
      '--name=trousseau-test',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=trousseau-test=${peer}`,
      `--cert-file=${files.serverCert}`,
      `--key-file=${files.serverKey}`,
      `--trusted-ca-file=${files.ca}`,
      '--client-cert-auth',
      '--logger=zap',
      '--log-outputs=stderr',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const output = { text: '' };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForReady(child, output);
  } catch (error) {
    await stop();
    throw error;
  }
  // Keep draining its log so a chatty etcd never blocks on a full pipe.
  child.stderr?.resume();
  return {
    endpoint,
    caFile: files.ca,
    certFile: files.clientCert,
    keyFile: files.clientKey,
    version,
    close: stop,
  };
}
