import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Http1ExchangeError } from '../src/http1/connection-pool.js';
import { requestHead } from '../src/http1/request-head.js';

type RequestHeadParts = Parameters<typeof requestHead>[0];

const parts = (overrides: Partial<RequestHeadParts> = {}): RequestHeadParts => ({
  method: 'GET',
  path: '/v1/sys/health',
  host: '127.0.0.1:8200',
  headers: {},
  contentLength: undefined,
  ...overrides,
});

/** Checks `requestHead(input)` throws an Http1ExchangeError of `code` whose message does not hold `secret`. */
function refuses(input: RequestHeadParts, code: string, secret: string): void {
  assert.throws(
    () => requestHead(input),
    (error: unknown) => {
      assert.ok(error instanceof Http1ExchangeError, `not an Http1ExchangeError: ${String(error)}`);
      assert.equal(error.code, code);
      assert.ok(!error.message.includes(secret), `the message names the value: ${error.message}`);
      assert.ok(!error.stack?.includes(secret), 'the stack names the value');
      return true;
    },
  );
}

describe('requestHead', () => {
  it('serializes the request line, Host, the headers in order, Content-Length and Connection', () => {
    assert.equal(
      requestHead(
        parts({
          method: 'POST',
          path: '/v1/transit/encrypt/my-key?x=1%20',
          headers: {
            'X-Vault-Token': 'hvs.abc',
            'Content-Type': 'application/json',
            Accept: 'application/json',
          },
          contentLength: 42,
        }),
      ),
      'POST /v1/transit/encrypt/my-key?x=1%20 HTTP/1.1\r\n' +
        'Host: 127.0.0.1:8200\r\n' +
        'X-Vault-Token: hvs.abc\r\n' +
        'Content-Type: application/json\r\n' +
        'Accept: application/json\r\n' +
        'Content-Length: 42\r\n' +
        'Connection: keep-alive\r\n' +
        '\r\n',
    );
  });

  it('GET without a body sends no Content-Length; POST and PUT without a body send Content-Length: 0', () => {
    assert.equal(
      requestHead(parts({ host: 'vault.example:8200' })),
      'GET /v1/sys/health HTTP/1.1\r\nHost: vault.example:8200\r\nConnection: keep-alive\r\n\r\n',
    );
    assert.equal(
      requestHead(parts({ method: 'POST', path: '/v1/auth/token/renew-self' })),
      'POST /v1/auth/token/renew-self HTTP/1.1\r\nHost: 127.0.0.1:8200\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n',
    );
    assert.match(requestHead(parts({ method: 'PUT' })), /\r\nContent-Length: 0\r\n/);
    assert.doesNotMatch(requestHead(parts({ method: 'DELETE' })), /Content-Length/i);
    assert.match(requestHead(parts({ method: 'GET', contentLength: 3 })), /\r\nContent-Length: 3\r\n/);
  });

  it('ignores caller-supplied Host, Content-Length, Connection and Transfer-Encoding, in any case', () => {
    const head = requestHead(
      parts({
        method: 'POST',
        headers: {
          host: 'evil.example',
          'CONTENT-LENGTH': '999',
          Connection: 'close',
          'transfer-encoding': 'chunked',
          'X-Kept': 'yes',
        },
        contentLength: 7,
      }),
    );
    assert.equal(
      head,
      'POST /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1:8200\r\nX-Kept: yes\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n',
    );
  });

  it('keeps Latin-1 and tabs in a value', () => {
    assert.match(
      requestHead(parts({ headers: { 'X-Name': 'caf\xe9\tau lait' } })),
      /\r\nX-Name: caf\xe9\tau lait\r\n/,
    );
  });

  it('refuses a value with a line break, a NUL or a character past Latin-1 (ERR_INVALID_CHAR), without naming it', () => {
    refuses(
      parts({ headers: { 'X-Vault-Token': 'hvs.secret\nX-Injected: 1' } }),
      'ERR_INVALID_CHAR',
      'hvs.secret',
    );
    refuses(parts({ headers: { 'X-Vault-Token': 'hvs.secret\r' } }), 'ERR_INVALID_CHAR', 'hvs.secret');
    refuses(parts({ headers: { 'X-Vault-Token': 'hvs.se\x00cret' } }), 'ERR_INVALID_CHAR', 'hvs.se');
    refuses(parts({ headers: { 'X-Vault-Token': 'hvs.secret\u0100' } }), 'ERR_INVALID_CHAR', 'hvs.secret');
    refuses(parts({ host: 'vault-host-zq\r\nX: y' }), 'ERR_INVALID_CHAR', 'vault-host-zq');
    refuses(parts({ path: '/v1/secret-path-zq HTTP/1.1\r\nX: y' }), 'ERR_INVALID_CHAR', 'secret-path-zq');
    refuses(parts({ path: 'v1/relative' }), 'ERR_INVALID_CHAR', 'v1/relative');
  });

  it('refuses a header name or method that is not a token (ERR_INVALID_HTTP_TOKEN)', () => {
    refuses(parts({ headers: { 'Bad Name': 'x' } }), 'ERR_INVALID_HTTP_TOKEN', 'Bad Name');
    refuses(parts({ headers: { 'X-A:': 'x' } }), 'ERR_INVALID_HTTP_TOKEN', 'X-A:');
    refuses(parts({ headers: { '': 'value-of-empty' } }), 'ERR_INVALID_HTTP_TOKEN', 'value-of-empty');
    refuses(parts({ headers: { 'X-\nInjected': 'x' } }), 'ERR_INVALID_HTTP_TOKEN', 'Injected');
    refuses(parts({ method: 'GET /x' }), 'ERR_INVALID_HTTP_TOKEN', 'GET /x');
  });
});
