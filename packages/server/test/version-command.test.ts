import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { runCli } from '../src/cli.js';
import { TROUSSEAU_VERSION } from '../src/version.js';
import { BIN } from './helpers.js';

/** stdout of the real command in its own process. */
async function trousseau(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args]);
  return stdout;
}

/** stdout of the same arguments through the argument parser (commander), in this process. */
async function throughParser(...args: string[]): Promise<string> {
  let written = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    written += chunk.toString();
    return true;
  };
  try {
    assert.equal(await runCli(['node', 'trousseau', ...args]), 0);
  } finally {
    process.stdout.write = write;
  }
  return written;
}

// The command (bin.cts, run here as shipped: the bundle) answers a lone version request before the argument
// parser loads; the answer must be the one the parser gives.
describe('trousseau version', () => {
  for (const args of [['version'], ['--version'], ['-V']]) {
    it(`\`trousseau ${args.join(' ')}\` prints what the argument parser prints`, async () => {
      const printed = await trousseau(...args);
      assert.equal(printed, await throughParser(...args));
      assert.ok(printed.includes(TROUSSEAU_VERSION), printed);
    });
  }

  it('anything more goes through the argument parser', async () => {
    await assert.rejects(trousseau('version', 'extra'), /too many arguments|unknown/i);
  });
});
