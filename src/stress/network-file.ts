/**
 * A network file written by hand: network.json in a data dir of its own, listing nodes started anywhere
 * (`teechain node start` on other machines) by REST URL and admin token, so that `teechain stress --datadir
 * DIR` (and every wallet command, `--node NAME`) reaches them as it reaches a network `network up` started
 * (docs/stress.md, "Across real machines"). Checked before anything is sent: a malformed entry is one line.
 */
import { join } from 'node:path';
import { CliError, type NetworkFile } from '../cli/client.ts';

export class NetworkFileError extends CliError {}

type Entry = Record<string, unknown>;

const isObject = (x: unknown): x is Entry => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * `raw` (network.json of `datadir`, parsed) as a NetworkFile, every node and backup checked: a name (each
 * once), an http(s) REST URL, and `tokenFile` or `token` (one of them). The committee size, when the file
 * does not give it, is one more than the most backups a node lists.
 * @throws NetworkFileError naming the file, the entry and what is wrong with it.
 */
export function checkNetworkFile(raw: unknown, datadir: string): NetworkFile {
  const file = join(datadir, 'network.json');
  const fail = (what: string): never => {
    throw new NetworkFileError(`${file}: ${what}`);
  };
  if (!isObject(raw)) fail('not a JSON object: { "nodes": [ { "name", "restUrl", "tokenFile" or "token" }, … ] }');
  const r = raw as Entry;
  if (!Array.isArray(r.nodes))
    fail('no "nodes" list: { "nodes": [ { "name", "restUrl", "tokenFile" or "token" }, … ] }');
  const names = new Set<string>();
  const member = (e: unknown, where: string) => {
    if (!isObject(e)) fail(`${where} is not an object { "name", "restUrl", "tokenFile" or "token" }`);
    const m = e as Entry;
    if (typeof m.name !== 'string' || m.name === '') fail(`${where} has no "name"`);
    const at = `${where} (${m.name as string})`;
    if (names.has(m.name as string)) fail(`${at}: the name is there twice`);
    names.add(m.name as string);
    let url: URL | null = null;
    try {
      url = typeof m.restUrl === 'string' ? new URL(m.restUrl) : null;
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      fail(
        `${at}: "restUrl" must be the node's REST URL, http://HOST:PORT (what \`teechain node start\` prints as rest_url)`,
      );
    const file = typeof m.tokenFile === 'string' && m.tokenFile !== '';
    const token = typeof m.token === 'string' && m.token !== '';
    if (file === token)
      fail(`${at}: give "tokenFile" (the file holding its admin token) or "token" (the token itself), one of them`);
    if (m.backups !== undefined && where.includes('.backups')) fail(`${at}: a backup lists no backups`);
  };
  let most = 0;
  (r.nodes as unknown[]).forEach((n, i) => {
    member(n, `nodes[${i}]`);
    const b = (n as Entry).backups;
    if (b === undefined) return;
    if (!Array.isArray(b)) fail(`nodes[${i}] (${(n as Entry).name as string}): "backups" must be a list of members`);
    (b as unknown[]).forEach((m, j) => member(m, `nodes[${i}].backups[${j}]`));
    most = Math.max(most, (b as unknown[]).length);
  });
  if (r.committee !== undefined && (!Number.isSafeInteger(r.committee) || (r.committee as number) < 1))
    fail('"committee" must be a whole number of members per treasury, 1 or more');
  return { ...(raw as unknown as NetworkFile), committee: (r.committee as number | undefined) ?? 1 + most };
}

/** Two entries that are the same treasury (one node listed twice under two names) would pay themselves. */
export function distinctTreasuries(treasuries: Array<{ name: string; id: string }>): void {
  const seen = new Map<string, string>();
  for (const t of treasuries) {
    const other = seen.get(t.id);
    if (other !== undefined)
      throw new NetworkFileError(`${other} and ${t.name} are the same treasury (${t.id.slice(0, 16)}…): list it once`);
    seen.set(t.id, t.name);
  }
}
