/**
 * The dashboard server's client for one node's REST API. It holds the node's admin token (read from the
 * token file network.json names) and never hands it on: the page talks to the dashboard server only.
 * Answers keep the node's HTTP status and body, so the page can show an error exactly as the API gave it.
 */
import { readFile } from 'node:fs/promises';
import type { NetworkNode } from '../cli/client.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: callers read them as the API documents
export interface NodeAnswer<T = any> {
  status: number;
  body: T;
}

/** The answer when the node could not be reached at all (no HTTP status from it). */
export function unreachable(
  n: Pick<NetworkNode, 'name' | 'restUrl'>,
  err: unknown,
): NodeAnswer<{ error: { code: string; message: string } }> {
  return {
    status: 502,
    body: {
      error: {
        code: 'node_unreachable',
        message: `${n.name} at ${n.restUrl} did not answer: ${(err as Error)?.message ?? String(err)}`,
      },
    },
  };
}

export class NodeApi {
  private token: string | null = null;

  constructor(readonly node: NetworkNode) {}

  /** Never throws: a failure to reach the node is answered as 502 node_unreachable. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: callers read them as the API documents
  async request<T = any>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    timeoutMs = 60_000,
  ): Promise<NodeAnswer<T>> {
    try {
      const res = await this.fetch(method, path, body, timeoutMs);
      const text = await res.text();
      const json = (res.headers.get('content-type') ?? '').includes('json');
      return { status: res.status, body: (json && text ? JSON.parse(text) : text) as T };
    } catch (err) {
      // An error body, like the API's own errors: callers look at the status before the body.
      return unreachable(this.node, err) as unknown as NodeAnswer<T>;
    }
  }

  /** Like request(), but the body only on success; throws Error("code: message") otherwise. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: callers read them as the API documents
  async ok<T = any>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const r = await this.request<T>(method, path, body, timeoutMs);
    if (r.status >= 200 && r.status < 300) return r.body;
    const e = (r.body as { error?: { code?: string; message?: string } })?.error;
    throw new Error(e ? `${e.code}: ${e.message}` : `${method} ${path}: HTTP ${r.status}`);
  }

  private async fetch(method: string, path: string, body: unknown, timeoutMs: number): Promise<Response> {
    // Read lazily and again after a 401: a node restarted from a new data dir has a new token.
    // A network file written by hand may give the token itself (`token`) instead of its file.
    const read = async () => this.node.token?.trim() ?? (await readFile(this.node.tokenFile, 'utf8')).trim();
    this.token ??= await read();
    const send = () =>
      fetch(`${this.node.restUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    const res = await send();
    if (res.status !== 401) return res;
    this.token = await read();
    return send();
  }
}
