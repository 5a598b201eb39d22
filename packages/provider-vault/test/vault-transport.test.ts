import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createServer as createTcpServer,
  connect,
  type AddressInfo,
  type Server as NetServer,
} from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { createRequestScope, silentLogger } from '@trousseau/core';
import { createTestCertificates, testRequestContext } from '@trousseau/testing';
import type { VaultEmulator } from '@trousseau/testing/vault';
import { VaultHttp } from '../src/vault-http.js';
import { usingRealVault } from './backend.js';
import { eventually, rejectsWith, tokenAuth, useVaultBackend } from './helpers.js';

const ctx = (timeoutMs = 2_000): ReturnType<typeof testRequestContext> => testRequestContext(timeoutMs);

async function listen(server: NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: NetServer): Promise<void> {
  if ('closeAllConnections' in server) (server as Server).closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Forwards a request to `target` as it came (a plain reverse proxy for the paths not redirected). */
function forward(target: string, req: IncomingMessage, res: ServerResponse): void {
  const upstream = httpRequest(
    `${target}${req.url ?? '/'}`,
    { method: req.method, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}

describe(
  'vault transport',
  { skip: usingRealVault ? 'needs the emulator (latency, request log)' : false },
  () => {
    const vault = useVaultBackend({ shareClock: false });
    let emulator: VaultEmulator;
    let auth: Record<string, unknown>;
    before(async () => {
      assert.ok(vault.backend.emulator !== undefined);
      emulator = vault.backend.emulator;
      ({ auth } = await tokenAuth(vault.backend, vault.fixture));
    });
    afterEach(() => {
      emulator.faults.latencyMs = 0;
    });

    describe('redirects', () => {
      let server: Server;
      let url: string;
      /** Where the encrypt path is redirected to (`self` loops back to this server). */
      let target: 'emulator' | 'localhost' | 'self' = 'emulator';
      const redirected: string[] = [];
      before(async () => {
        server = createServer((req, res) => {
          const path = req.url ?? '/';
          if (!path.startsWith('/v1/transit/encrypt/')) {
            forward(emulator.url, req, res);
            return;
          }
          redirected.push(`${req.method ?? ''} ${path}`);
          req.resume();
          const location =
            target === 'emulator'
              ? `${emulator.url}${path}`
              : target === 'localhost'
                ? `${emulator.url.replace('127.0.0.1', 'localhost')}${path}`
                : path;
          res.writeHead(307, { location }).end();
        });
        url = `http://127.0.0.1:${await listen(server)}`;
      });
      after(async () => {
        await close(server);
      });

      it('follows a 307 from a standby to the active node with the same method, body and token', async () => {
        target = 'emulator';
        const provider = await vault.fixture.open({ address: url, auth });
        try {
          redirected.length = 0;
          emulator.clearRequests();
          const plaintext = randomBytes(32);
          const sealed = await provider.encrypt(plaintext, ctx());
          assert.deepEqual(redirected, [`POST /v1/transit/encrypt/${vault.fixture.keyName}`]);
          assert.ok(
            emulator.requests.some(
              (request) =>
                request.method === 'POST' && request.path === `/v1/transit/encrypt/${vault.fixture.keyName}`,
            ),
            'the redirected encrypt reached the emulator',
          );
          assert.deepEqual(
            Buffer.from(await provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, ctx())),
            plaintext,
          );
        } finally {
          await provider.close();
        }
      });

      it('refuses a redirect to another host over plain http, and a third redirect', async () => {
        const provider = await vault.fixture.open({ address: url, auth });
        try {
          target = 'localhost';
          await rejectsWith(
            provider.encrypt(randomBytes(32), ctx()),
            'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
            /redirected to http:\/\/localhost:\d+: not followed \(to another host over plain http\)/,
          );
          target = 'self';
          redirected.length = 0;
          await rejectsWith(
            provider.encrypt(randomBytes(32), ctx()),
            'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
            /not followed \(more than 2 times\)/,
          );
          assert.equal(redirected.length, 3, 'the first answer and two redirects were followed');
        } finally {
          target = 'emulator';
          await provider.close();
        }
      });

      it('refuses an https -> http redirect (the token would travel in clear) with UNAVAILABLE', async () => {
        const certificates = await createTestCertificates();
        const https = createHttpsServer(
          { key: certificates.serverKey, cert: certificates.serverCert },
          (req, res) => {
            req.resume();
            res.writeHead(307, { location: `${emulator.url}${req.url ?? '/'}` }).end();
          },
        );
        const port = await listen(https);
        const caFile = await vault.fixture.writeFile('redirect-ca.pem', certificates.ca);
        const provider = await vault.fixture.open({
          address: `https://127.0.0.1:${port}`,
          auth,
          tls: { caFile },
        });
        try {
          emulator.clearRequests();
          await rejectsWith(
            provider.encrypt(randomBytes(32), ctx()),
            'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
            /redirected to http:\/\/127\.0\.0\.1:\d+: not followed \(from https to http\)/,
          );
          assert.deepEqual(emulator.requests, [], 'nothing (and so no token) went to the http address');
        } finally {
          await provider.close();
          await close(https);
        }
      });
    });

    describe('abort', () => {
      /** A TCP proxy in front of the emulator, counting connections its client side closed. */
      let proxy: NetServer;
      let url: string;
      let clientCloses = 0;
      before(async () => {
        const emulatorPort = Number(new URL(emulator.url).port);
        proxy = createTcpServer((client) => {
          const upstream = connect(emulatorPort, '127.0.0.1');
          client.pipe(upstream);
          upstream.pipe(client);
          client.on('error', () => undefined);
          upstream.on('error', () => undefined);
          client.on('close', () => {
            clientCloses++;
            upstream.destroy();
          });
          upstream.on('close', () => client.destroy());
        });
        url = `http://127.0.0.1:${await listen(proxy)}`;
      });
      after(async () => {
        await close(proxy);
      });

      it('destroys the request in flight when the caller cancels, instead of waiting for Vault', async () => {
        const provider = await vault.fixture.open({ address: url, auth });
        try {
          // Vault answers slower than the caller will wait; a keep-alive socket is never closed by itself.
          emulator.faults.latencyMs = 1_500;
          emulator.clearRequests();
          const closesBefore = clientCloses;
          const scope = createRequestScope({ deadline: Date.now() + 10_000, logger: silentLogger });
          const call = provider.encrypt(randomBytes(32), scope.context);
          await eventually(() =>
            emulator.requests.some((request) => request.path.includes('/transit/encrypt/')),
          );
          scope.cancel('client went away');
          await rejectsWith(call, 'TROUSSEAU_ERR_CANCELLED');
          // The request was torn down (req.destroy()): its connection closes while Vault still holds it.
          await eventually(() => clientCloses > closesBefore);
          scope.dispose();
        } finally {
          await provider.close();
        }
      });

      it('rejects at the deadline with DEADLINE_EXCEEDED and tears the request down', async () => {
        const provider = await vault.fixture.open({ address: url, auth });
        try {
          emulator.faults.latencyMs = 1_500;
          emulator.clearRequests();
          const closesBefore = clientCloses;
          // The deadline leaves a loaded machine time to reach Vault; Vault answers only after it.
          await rejectsWith(provider.encrypt(randomBytes(32), ctx(1_000)), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
          assert.ok(emulator.requests.some((request) => request.path.includes('/transit/encrypt/')));
          await eventually(() => clientCloses > closesBefore);
        } finally {
          await provider.close();
        }
      });
    });

    describe('bodies', () => {
      let server: Server;
      let http: VaultHttp;
      /** The request line's target of every request the server received, in order. */
      const seen: string[] = [];
      before(async () => {
        server = createServer((req, res) => {
          req.resume();
          const path = req.url ?? '/';
          seen.push(`${req.method ?? ''} ${path}`);
          if (path.endsWith('/empty')) res.writeHead(204).end();
          else if (path.endsWith('/html-200'))
            res.writeHead(200, { 'content-type': 'text/html' }).end('<html>secret-looking-body</html>');
          else
            res
              .writeHead(502, { 'content-type': 'text/html' })
              .end('<html>bad gateway secret-looking-body</html>');
        });
        http = await VaultHttp.open({
          address: `http://127.0.0.1:${await listen(server)}`,
          namespace: undefined,
          tls: undefined,
          configDir: vault.fixture.dir,
        });
      });
      after(async () => {
        http.close();
        await close(server);
      });

      it('refuses a token Node cannot put in a header without crashing later, naming no value', async () => {
        // A token file with a line break inside: http.request throws synchronously. Before the fix the
        // deadline timer fired afterwards on a request that did not exist and killed the process.
        await assert.rejects(
          http.write('x/empty', { a: 1 }, { token: 's.abc\ndef', timeoutMs: 150 }),
          (error: Error) => {
            assert.match(error.message, /could not be built/);
            assert.doesNotMatch(error.message, /abc|def/);
            return true;
          },
        );
        await new Promise((resolve) => setTimeout(resolve, 300)); // past the deadline: no stray timer fires
        assert.equal(await http.write('x/empty', { a: 1 }, { token: 's.test', timeoutMs: 1_000 }), undefined);
      });

      it('sends every request to its own path and query, however many distinct paths it has seen', async () => {
        // The transport parses each URL once and keeps a bounded number of them: more distinct paths than
        // it keeps, each asked twice (the second time from the cache, or parsed again once it was cleared).
        seen.length = 0;
        const expected: string[] = [];
        for (let i = 0; i < 150; i++) {
          const path = i % 3 === 0 ? `x/${i % 100}/empty` : `x/${i % 100}/list?list=1`;
          expected.push(`POST /v1/${path}`);
          await http.write(path, { i }, { token: 's.test', timeoutMs: 1_000 }).catch(() => undefined);
        }
        assert.deepEqual(seen, expected);
      });

      it('decodes an empty 204 as no body, and never puts a non-JSON body in an error', async () => {
        assert.equal(await http.write('x/empty', { a: 1 }, { token: 's.test', timeoutMs: 1_000 }), undefined);
        await assert.rejects(http.read('x/html-200', { timeoutMs: 1_000 }), (error: Error) => {
          assert.equal((error as { kind?: unknown }).kind, 'protocol');
          assert.match(error.message, /answered 200 with a body that is not JSON/);
          assert.doesNotMatch(error.message, /secret-looking-body/);
          return true;
        });
        await assert.rejects(http.read('x/html-502', { timeoutMs: 1_000 }), (error: Error) => {
          assert.equal((error as { status?: unknown }).status, 502);
          assert.doesNotMatch(error.message, /secret-looking-body/);
          return true;
        });
      });
    });
  },
);
