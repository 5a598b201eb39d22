import { Writable } from 'node:stream';
import type { Logger } from '@trousseau/core';
import { createLogger, type LogLevel } from '../../src/index.js';

/** The server's own pino logger at `level`, writing into memory: what an operator's log would hold. */
export function capturedLog(level: LogLevel): { logger: Logger; lines(): string[] } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return {
    logger: createLogger({ level, format: 'json', destination: sink }),
    lines: () => text.split('\n').filter((line) => line !== ''),
  };
}

/** pino's number for the warn level. */
export const WARN = 40;

export function levelOf(line: string): number {
  return (JSON.parse(line) as { level: number }).level;
}
