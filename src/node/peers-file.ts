/**
 * <datadir>/peers.json: the addresses of the peers this node dialled, so that a restarted node dials
 * them again by itself. Written whole to a temporary file, then renamed, so a crash leaves the old list
 * or the new one, never half of one.
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

const PEERS_FILE = 'peers.json';

/**
 * The saved addresses; none when the file does not exist yet (a new node).
 * @throws when the file exists but cannot be read or is not JSON
 */
export async function loadPeers(datadir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(datadir, PEERS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const list = JSON.parse(text) as unknown;
  return Array.isArray(list) ? list.filter((a): a is string => typeof a === 'string') : [];
}

export async function savePeers(datadir: string, addresses: Iterable<string>): Promise<void> {
  const file = join(datadir, PEERS_FILE);
  await writeFile(`${file}.tmp`, JSON.stringify([...addresses]));
  await rename(`${file}.tmp`, file);
}
