// What the bench's bare servers and direct drivers share: the KMS v2 service definition as a typical
// grpc-js server loads it (from the .proto through @grpc/proto-loader), serving it on a unix socket, and a
// keep-alive HTTP POST to the Vault emulator.
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** The KMS v2 service of packages/core/proto/kms-v2.proto, loaded as a typical grpc-js server does. */
export function kmsV2Service() {
  const proto = fileURLToPath(new URL('../../packages/core/proto/kms-v2.proto', import.meta.url));
  const definition = loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true });
  return loadPackageDefinition(definition).v2.KeyManagementService.service;
}

/** Binds `server` to the unix socket, says `bare server listening` (what the bench waits for), and stops on SIGTERM. */
export function serveOnSocket(server, socket) {
  server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
    if (error) {
      console.error(error.message);
      process.exit(1);
    }
    console.log('bare server listening');
  });
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

/** POSTs `body` as JSON to `url` with the Vault token over `agent`; resolves with the parsed answer. */
export function postJson(url, token, agent, body) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'x-vault-token': token,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
