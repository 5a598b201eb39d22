// The connections to Vault across a client certificate renewal: a request that was waiting for a
// connection when the certificate changed connects with the new one, never with the one it replaced.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { createTestCertificates, waitUntil, type TestCertificates } from '@trousseau/testing';
import { requestHead } from '../src/http1/request-head.js';
import { VaultConnections, type VaultTlsSettings } from '../src/vault-connections.js';

/** node:http's Agent limit, which the connections keep: requests past it wait for a connection. */
const MAX_SOCKETS = 64;

describe('vault connections: client certificate renewal', () => {
  let first: TestCertificates;
  let renewed: TestCertificates;
  let server: Server;
  let url: URL;
  /** Each request the server read: the common name of the certificate its connection presented. */
  const seen: { commonName: string; answer: () => void }[] = [];
  const sockets = new Set<TLSSocket>();

  before(async () => {
    [first, renewed] = await Promise.all([
      createTestCertificates(),
      createTestCertificates({ clientCommonName: 'renewed-client' }),
    ]);
    server = createServer(
      {
        key: first.serverKey,
        cert: first.serverCert,
        ca: [first.ca, renewed.ca],
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        const commonName = String(socket.getPeerCertificate().subject.CN);
        let pending = '';
        socket.on('data', (chunk: Buffer) => {
          pending += chunk.toString('latin1');
          for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
            pending = pending.slice(end + 4);
            seen.push({
              commonName,
              answer: () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'),
            });
          }
        });
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/transit/encrypt/k8s`);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const settings = (certificates: TestCertificates): VaultTlsSettings => ({
    ca: Buffer.from(first.ca),
    cert: Buffer.from(certificates.clientCert),
    key: Buffer.from(certificates.clientKey),
    serverName: undefined,
    rejectUnauthorized: true,
  });

  it('a request queued behind a full pool connects with the renewed certificate', async () => {
    const connections = new VaultConnections({
      socketPath: undefined,
      tls: settings(first),
      maxBodyBytes: 1024,
    });
    try {
      const request = {
        method: 'GET',
        head: requestHead({
          method: 'GET',
          path: url.pathname,
          host: url.host,
          headers: {},
          contentLength: undefined,
        }),
        payload: undefined,
      };
      const exchange = (): Promise<unknown> =>
        connections.poolFor(url).exchange(request, Date.now() + 20_000, undefined);
      // Every connection of the pool busy, and one more request waiting for one.
      const busy = Array.from({ length: MAX_SOCKETS }, exchange);
      const queued = exchange();
      await waitUntil(() => seen.length === MAX_SOCKETS, 'the server holds a request on every connection');
      assert.ok(seen.every((request) => request.commonName === 'trousseau-test-client'));

      connections.replaceTls(settings(renewed));
      // One answer frees a connection of the retired pool: it closes, and the queued request opens its own.
      seen[0]?.answer();
      await waitUntil(() => seen.length === MAX_SOCKETS + 1, 'the queued request reaches the server');
      assert.equal(seen[MAX_SOCKETS]?.commonName, 'renewed-client');
      // And a request made after the renewal, on the new pool, presents it too.
      const fresh = exchange();
      await waitUntil(() => seen.length === MAX_SOCKETS + 2, 'a new request reaches the server');
      assert.equal(seen[MAX_SOCKETS + 1]?.commonName, 'renewed-client');

      for (const request of seen.slice(1)) request.answer();
      await Promise.all([...busy, queued, fresh]);
    } finally {
      connections.close();
    }
  });
});
