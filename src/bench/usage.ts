/** What benchmarked node processes spend while a load runs. */

/** A node process that reports its own totals: CPU ms since it started (user + system) and RSS MB now. */
export interface Metered {
  usage(): Promise<{ cpu_ms: number; rss_mb: number }>;
}

/** Per node, in the order given: CPU ms spent while the load ran (every thread of its process), RSS MB after. */
export interface Spent {
  cpu_ms: number[];
  rss_mb: number[];
}

/** Runs `fn` and reports what each of `nodes` spent meanwhile. */
export async function metered<T>(nodes: Metered[], fn: () => Promise<T>): Promise<[T, Spent]> {
  const before = await Promise.all(nodes.map((n) => n.usage()));
  const result = await fn();
  const after = await Promise.all(nodes.map((n) => n.usage()));
  return [result, { cpu_ms: after.map((u, i) => u.cpu_ms - before[i]!.cpu_ms), rss_mb: after.map((u) => u.rss_mb) }];
}
