/**
 * Crash-safe file replacement for the platform's counters and the host's sealed blobs.
 *
 * Writes a temporary file in the same directory, fsyncs it, renames it over the target and fsyncs the
 * directory, so after a crash (process kill or power loss on a journaling filesystem) the target holds
 * either the complete old content or the complete new content, and once the promise resolves the new
 * content is on disk.
 */
import { open, rename, unlink, readFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** @throws the underlying fs error (the temporary file is removed first). */
export async function writeFileDurably(file: string, data: Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDirectory(dir);
}

/** fsync a directory, making a rename or create in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The file's bytes, or null if it does not exist. @throws other fs errors. */
export async function readFileIfExists(file: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
