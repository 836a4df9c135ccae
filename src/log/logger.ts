/**
 * The one way this project makes a logger: pino, one JSON object per line, at a level chosen with
 * --log-level. Secrets never reach a log call (keys stay in the enclave, tokens in the API layer, which
 * logs neither headers nor bodies); the redaction below is a second line of defence should a future log
 * call pass an object that carries one.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Field names whose values are replaced by "[redacted]" wherever they appear (top level or one object down). */
const SECRET_FIELDS = ['token', 'authorization', 'password', 'rpcPassword', 'privateKey', 'secret', 'cookie'];
const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'req.headers.authorization',
  'headers.authorization',
];

export interface LoggerOptions {
  /** Default 'info'. */
  level?: LogLevel;
  /** The component, written as `name` on every line (e.g. "node", "dashboard"). */
  name: string;
  /** A file to append to (created with its folder); default: stderr, since stdout carries the ready line. */
  file?: string;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

export function createLogger(opts: LoggerOptions): Logger {
  // Synchronous writes: at the default level a node logs a few lines per minute, and a crash must not
  // lose the lines that explain it.
  const dest = pino.destination({ dest: opts.file ?? 2, sync: true, mkdir: true });
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}

/** A logger that writes nothing, for code run without one (tests, the benchmark's agents). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
