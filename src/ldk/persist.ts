/**
 * LDK's storage port: a filesystem KVStore under one directory, every write made durable before it returns.
 *
 * LDK calls its store synchronously from inside the WASM core and takes a returned write as persisted
 * (a ChannelMonitorUpdate reported Completed lets the channel send the messages that depend on it), so
 * the write must be on disk by then: write a temporary file, fsync it, rename it over the key, fsync the
 * directory: the same replacement as enclave-sim's `writeFileDurably`, in its synchronous form because
 * the caller cannot await. That is also what ldk-node's FilesystemStore does.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import * as ldk from 'lightningdevkit';

/** Writes `data` to `file` atomically and durably (tmp + fsync + rename + directory fsync). @throws fs errors. */
export function writeFileDurablySync(file: string, data: Uint8Array): void {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o600);
  let written = false;
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    written = true;
  } finally {
    closeSync(fd);
    if (!written) {
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }
  renameSync(tmp, file);
  syncDirectorySync(dir);
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Counters of what the store did, for the benchmark's report. */
export interface StoreStats {
  writes: number;
  bytesWritten: number;
  writeMs: number;
}

/**
 * The KVStore: `primary/secondary/key` becomes a file path under `root` (LDK restricts namespaces and keys
 * to `[A-Za-z0-9_-]`, so they are safe path segments; we check anyway). Errors become LDK's IOError; a
 * callback into WASM must never throw.
 */
export class FilesystemKvStore {
  readonly stats: StoreStats = { writes: 0, bytesWritten: 0, writeMs: 0 };

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  path(primary: string, secondary: string, key?: string): string {
    for (const part of [primary, secondary, key ?? '']) {
      if (!/^[A-Za-z0-9_-]*$/.test(part))
        throw new RangeError(`KVStore: invalid namespace or key ${JSON.stringify(part)}`);
    }
    if (secondary !== '' && primary === '') throw new RangeError('KVStore: a secondary namespace needs a primary one');
    return join(this.root, primary, secondary, key ?? '');
  }

  read(primary: string, secondary: string, key: string): Uint8Array | null {
    try {
      return new Uint8Array(readFileSync(this.path(primary, secondary, key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  write(primary: string, secondary: string, key: string, data: Uint8Array): void {
    const t0 = performance.now();
    const file = this.path(primary, secondary, key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileDurablySync(file, data);
    this.stats.writes++;
    this.stats.bytesWritten += data.length;
    this.stats.writeMs += performance.now() - t0;
  }

  /** `lazy`: LDK allows the removal to be lost in a crash, so the directory is not fsynced. */
  remove(primary: string, secondary: string, key: string, lazy: boolean): void {
    const file = this.path(primary, secondary, key);
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return;
    }
    if (!lazy) syncDirectorySync(dirname(file));
  }

  list(primary: string, secondary: string): string[] {
    try {
      return readdirSync(this.path(primary, secondary), { withFileTypes: true })
        .filter((e) => e.isFile() && !e.name.startsWith('.'))
        .map((e) => e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** The LDK trait object over this store. */
  asKVStore(log: (msg: string) => void): ldk.KVStore {
    const io = (op: string, err: unknown): ldk.IOError => {
      log(`KVStore ${op} failed: ${(err as Error).message}`);
      return (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? ldk.IOError.LDKIOError_NotFound
        : ldk.IOError.LDKIOError_Other;
    };
    return ldk.KVStore.new_impl({
      read: (p, s, k) => {
        try {
          const data = this.read(p, s, k);
          return data
            ? ldk.Result_CVec_u8ZIOErrorZ.constructor_ok(data)
            : ldk.Result_CVec_u8ZIOErrorZ.constructor_err(ldk.IOError.LDKIOError_NotFound);
        } catch (err) {
          return ldk.Result_CVec_u8ZIOErrorZ.constructor_err(io('read', err));
        }
      },
      write: (p, s, k, buf) => {
        try {
          this.write(p, s, k, buf);
          return ldk.Result_NoneIOErrorZ.constructor_ok();
        } catch (err) {
          return ldk.Result_NoneIOErrorZ.constructor_err(io('write', err));
        }
      },
      remove: (p, s, k, lazy) => {
        try {
          this.remove(p, s, k, lazy);
          return ldk.Result_NoneIOErrorZ.constructor_ok();
        } catch (err) {
          return ldk.Result_NoneIOErrorZ.constructor_err(io('remove', err));
        }
      },
      list: (p, s) => {
        try {
          return ldk.Result_CVec_StrZIOErrorZ.constructor_ok(this.list(p, s));
        } catch (err) {
          return ldk.Result_CVec_StrZIOErrorZ.constructor_err(io('list', err));
        }
      },
    });
  }
}
