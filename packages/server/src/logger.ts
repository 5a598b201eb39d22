import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LOG_LEVELS } from '@trousseau/core';

export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Field names that must never carry a value into a log line. Code never logs them on purpose; this is the
 * second line of defence should a future change pass a request or a token object to the logger.
 */
const REDACTED_PATHS = [
  'plaintext',
  'plain',
  'ciphertext',
  'cipher',
  'token',
  'clientToken',
  'client_token',
  'secretId',
  'secret_id',
  'password',
  'jwt',
  '*.plaintext',
  '*.plain',
  '*.token',
  '*.secretId',
  '*.secret_id',
  '*.client_token',
  '*.jwt',
  'headers.authorization',
  'headers["x-vault-token"]',
];

/** pino JSON logs (or pretty ones for a terminal) with secrets redacted by field name. */
export function createLogger(options: {
  level: LogLevel;
  format: 'json' | 'pretty';
  destination?: DestinationStream;
}): PinoLogger {
  const base = {
    level: options.level,
    base: { app: 'trousseau' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return options.destination === undefined ? pino(base) : pino(base, options.destination);
}
