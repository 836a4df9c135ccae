/**
 * A small REST client for the CLI and the launcher: knows network.json, bearer tokens and the
 * API's error shape, and turns failures into one-line messages.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface NetworkNode {
  name: string;
  nodeId: string;
  restUrl: string;
  /** The file holding the node's admin token (what `teechain node start` prints as token_file)… */
  tokenFile: string;
  /** …or, in a network file written by hand, the token itself instead (then tokenFile may be absent). */
  token?: string;
  p2p: string;
  /**
   * The treasury this node is (a member of): its node id for a lone treasury, the committee's identity on
   * every member of a committee (GET /v1/getinfo treasury_id). Channel peers and payers name it.
   */
  treasuryId?: string;
  /** With `--committee N`: the node's backups, in chain order at formation (the node itself founded it). */
  backups?: Array<Omit<NetworkNode, 'backups'>>;
}

export interface NetworkFile {
  chain: { rpcUrl: string; rpcUser: string; rpcPassword: string; embedded?: boolean };
  nodes: NetworkNode[];
  topology?: string;
  /** A `random` topology's seed: the same seed, the same channels. */
  topologySeed?: number;
  /** Committee size of every treasury (1: no committee). */
  committee?: number;
}

export class CliError extends Error {}

/**
 * A committee backup's `409 not_primary`, with the primary it names. The CLI does not follow it on its own:
 * the URL comes from the backup's host, and this node's token must not go wherever that host says.
 */
export class NotPrimaryError extends CliError {
  constructor(
    message: string,
    readonly primary: { node_id: string; rest_url: string | null } | null,
  ) {
    super(message);
  }
}

export async function readNetwork(datadir: string): Promise<NetworkFile> {
  let text: string;
  try {
    text = await readFile(join(datadir, 'network.json'), 'utf8');
  } catch {
    throw new CliError(
      `no network at ${datadir} (network.json not found): start one with \`npm start\` or give --datadir`,
    );
  }
  try {
    return JSON.parse(text) as NetworkFile;
  } catch (err) {
    throw new CliError(`${join(datadir, 'network.json')} is not JSON: ${(err as Error).message}`);
  }
}

export class ApiClient {
  constructor(
    readonly restUrl: string,
    readonly token: string,
  ) {}

  static async forNode(n: Pick<NetworkNode, 'restUrl' | 'tokenFile' | 'token'>): Promise<ApiClient> {
    if (typeof n.token === 'string') return new ApiClient(n.restUrl, n.token.trim());
    let token: string;
    try {
      token = (await readFile(n.tokenFile, 'utf8')).trim();
    } catch {
      throw new CliError(`cannot read the token file ${n.tokenFile}`);
    }
    return new ApiClient(n.restUrl, token);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: callers read them as the API documents
  async request<T = any>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs = 120_000,
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.restUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new CliError(`cannot reach ${this.restUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      throw new CliError(`${method} ${path}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; primary?: unknown } } | null)?.error;
      if (e?.code === 'not_primary') throw new NotPrimaryError(`${e.code}: ${e.message}`, primaryIn(e.primary));
      throw new CliError(e ? `${e.code}: ${e.message}` : `${method} ${path}: HTTP ${res.status}`);
    }
    return parsed as T;
  }
}

/** The primary a not_primary answer names, if it names one in the documented shape. */
function primaryIn(p: unknown): NotPrimaryError['primary'] {
  const o = p as { node_id?: unknown; rest_url?: unknown } | null;
  if (typeof o?.node_id !== 'string') return null;
  return { node_id: o.node_id, rest_url: typeof o.rest_url === 'string' ? o.rest_url : null };
}
