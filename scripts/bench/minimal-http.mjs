// The least HTTP/1.1 client a plugin could use to reach the Vault emulator: one keep-alive TCP connection,
// requests written as one string and sent in order (pipelined when several are in flight), answers read by
// their Content-Length. No TLS, no chunked bodies, no redirects, no timeouts: it is a measuring stick for
// what node:http costs per call (bare-vault-server.mjs with `minimal`), not something to serve with. An
// answer it cannot read (chunked, no length) fails every call in flight and the connection.
import { connect } from 'node:net';

const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)\r\n/i;

/** A `postJson(path, token, body)` to `url` (http only) over one connection: resolves with the parsed answer. */
export function minimalJsonClient(url) {
  const { hostname, port, host } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), noDelay: true });
  const waiting = [];
  let buffered = Buffer.alloc(0);
  const failAll = (error) => {
    for (const { reject } of waiting.splice(0)) reject(error);
    socket.destroy();
  };
  socket.on('error', failAll);
  socket.on('close', () => failAll(new Error('connection closed')));
  socket.on('data', (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    for (;;) {
      const headEnd = buffered.indexOf(HEAD_END);
      if (headEnd < 0) return;
      const head = `${buffered.toString('latin1', 0, headEnd)}\r\n`;
      const length = CONTENT_LENGTH.exec(head);
      if (length === null) return failAll(new Error('an answer without Content-Length'));
      const bodyStart = headEnd + HEAD_END.length;
      const bodyEnd = bodyStart + Number(length[1]);
      if (buffered.length < bodyEnd) return;
      const status = Number(head.slice(9, 12));
      const text = buffered.toString('utf8', bodyStart, bodyEnd);
      buffered = buffered.subarray(bodyEnd);
      const { resolve, reject } = waiting.shift();
      if (status === 200) resolve(JSON.parse(text));
      else reject(new Error(`${status} ${text}`));
    }
  });
  return (path, token, body) =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      waiting.push({ resolve, reject });
      socket.write(
        `POST ${path} HTTP/1.1\r\nhost: ${host}\r\nx-vault-token: ${token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
      );
    });
}
