import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type MethodDefinition } from '@grpc/grpc-js';
import { kmsServices } from '@trousseau/core/grpc';
import { buildGrpcGoCaller, GrpcGoCaller } from './grpc-go-caller.js';
import { connectionsServed, startTestServer, type TestServer } from './helpers.js';

// grpc-go, dialling as kube-apiserver before 1.32 does (the bare socket path as target, so the path is
// the HTTP/2 :authority), against the real server over its real socket: the caller every cluster in
// service runs. Debian's grpc-go 1.33 is the generation kube-apiserver 1.20-1.22 were built with.

const CALLS = 10_000;
const CONCURRENCY = 64;
/** Installing Go from Debian and building grpc-go takes a minute or two on a loaded machine. */
const BUILD = { timeout: 600_000 };
const SLOW = { timeout: 300_000 };

type Api = 'v2' | 'v1beta1';

function method(api: Api, name: string): MethodDefinition<object, object> {
  const found = kmsServices()[api].service[name];
  assert.ok(found !== undefined, `${api} ${name}`);
  return found as MethodDefinition<object, object>;
}

async function call<T>(caller: GrpcGoCaller, api: Api, name: string, request: object): Promise<T> {
  const definition = method(api, name);
  const answer = await caller.call(definition.path, definition.requestSerialize(request));
  assert.equal(answer.code, GrpcStatus.OK, `${api} ${name}: ${answer.code} ${answer.message}`);
  return definition.responseDeserialize(answer.response) as T;
}

describe('grpc-go dialling the socket path, as kube-apiserver before 1.32', () => {
  let t: TestServer;
  let binary: string;
  before(async () => {
    binary = buildGrpcGoCaller().binary;
    t = await startTestServer({ health: { listen: '127.0.0.1:0' } });
  }, BUILD);
  after(async () => {
    await t?.close();
  });

  it(
    'answers the apiserver\'s probes: v1 Version, Encrypt("ping"), Decrypt; v2 Status, Encrypt, Decrypt',
    SLOW,
    async () => {
      const before = await connectionsServed(t);
      const caller = new GrpcGoCaller(binary, t.socket, { concurrency: 1 });
      try {
        const version = await call<{ version: string; runtime_name: string }>(caller, 'v1beta1', 'Version', {
          version: 'v1beta1',
        });
        assert.equal(version.version, 'v1beta1');
        assert.equal(version.runtime_name, 'trousseau');
        const ping = Buffer.from('ping');
        const { cipher } = await call<{ cipher: Buffer }>(caller, 'v1beta1', 'Encrypt', {
          version: 'v1beta1',
          plain: ping,
        });
        const { plain } = await call<{ plain: Buffer }>(caller, 'v1beta1', 'Decrypt', {
          version: 'v1beta1',
          cipher,
        });
        assert.deepEqual(plain, ping);
        const status = await call<{ version: string; healthz: string; key_id: string }>(
          caller,
          'v2',
          'Status',
          {},
        );
        assert.deepEqual([status.version, status.healthz], ['v2', 'ok']);
        const seed = randomBytes(32);
        const encrypted = await call<{ ciphertext: Buffer; key_id: string }>(caller, 'v2', 'Encrypt', {
          plaintext: seed,
          uid: 'a3c6c8e4-5f0e-4b3f-9d43-0d3b6c1f2a11',
        });
        assert.equal(encrypted.key_id, status.key_id);
        const decrypted = await call<{ plaintext: Buffer }>(caller, 'v2', 'Decrypt', {
          ciphertext: encrypted.ciphertext,
          key_id: encrypted.key_id,
          uid: 'b1d2e3f4-0000-4000-8000-000000000001',
        });
        assert.deepEqual(decrypted.plaintext, seed);
        const after = await connectionsServed(t);
        assert.deepEqual(
          { direct: after.direct - before.direct, rewritten: after.rewritten - before.rewritten },
          { direct: 0, rewritten: 1 },
          'one connection, through the rewriting layer',
        );
      } finally {
        assert.equal(await caller.close(), 0);
      }
    },
  );

  for (const api of ['v2', 'v1beta1'] as const) {
    it(
      `serves ${CALLS} ${api} calls on one connection, ${CONCURRENCY} at once, every answer checked`,
      SLOW,
      async () => {
        const caller = new GrpcGoCaller(binary, t.socket, { concurrency: CONCURRENCY });
        try {
          const plaintexts = Array.from({ length: CALLS / 2 }, () => randomBytes(32));
          if (api === 'v2') {
            const encrypted = await Promise.all(
              plaintexts.map((plaintext, index) =>
                call<{ ciphertext: Buffer; key_id: string }>(caller, 'v2', 'Encrypt', {
                  plaintext,
                  uid: `e-${index}`,
                }),
              ),
            );
            const decrypted = await Promise.all(
              encrypted.map((response, index) =>
                call<{ plaintext: Buffer }>(caller, 'v2', 'Decrypt', {
                  ciphertext: response.ciphertext,
                  key_id: response.key_id,
                  uid: `d-${index}`,
                }),
              ),
            );
            decrypted.forEach((response, index) => assert.deepEqual(response.plaintext, plaintexts[index]));
          } else {
            const encrypted = await Promise.all(
              plaintexts.map((plain) =>
                call<{ cipher: Buffer }>(caller, 'v1beta1', 'Encrypt', { version: 'v1beta1', plain }),
              ),
            );
            const decrypted = await Promise.all(
              encrypted.map((response) =>
                call<{ plain: Buffer }>(caller, 'v1beta1', 'Decrypt', {
                  version: 'v1beta1',
                  cipher: response.cipher,
                }),
              ),
            );
            decrypted.forEach((response, index) => assert.deepEqual(response.plain, plaintexts[index]));
          }
        } finally {
          assert.equal(await caller.close(), 0);
        }
      },
    );
  }

  it(
    'serves grpc-go with localhost as authority, as kube-apiserver 1.32+ sends it, the same way',
    SLOW,
    async () => {
      const before = await connectionsServed(t);
      const caller = new GrpcGoCaller(binary, t.socket, { concurrency: 16, authority: 'localhost' });
      try {
        const plaintexts = Array.from({ length: 200 }, () => randomBytes(32));
        const encrypted = await Promise.all(
          plaintexts.map((plaintext) =>
            call<{ ciphertext: Buffer; key_id: string }>(caller, 'v2', 'Encrypt', { plaintext }),
          ),
        );
        const decrypted = await Promise.all(
          encrypted.map((response) =>
            call<{ plaintext: Buffer }>(caller, 'v2', 'Decrypt', {
              ciphertext: response.ciphertext,
              key_id: response.key_id,
            }),
          ),
        );
        decrypted.forEach((response, index) => assert.deepEqual(response.plaintext, plaintexts[index]));
        const after = await connectionsServed(t);
        assert.deepEqual(
          { direct: after.direct - before.direct, rewritten: after.rewritten - before.rewritten },
          { direct: 1, rewritten: 0 },
          'one connection, handed to grpc-js as it is',
        );
      } finally {
        assert.equal(await caller.close(), 0);
      }
    },
  );
});
