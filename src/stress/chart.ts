/**
 * The chart of a stress run (`--chart FILE.svg`): one self-contained SVG drawn from the report alone, with
 * no script, font or other file it needs. Above, the payments answered in each second of the run (succeeded
 * and failed, stacked), with the faults of `--chaos` marked where they happened; below, the distribution of
 * the succeeded payments' latencies (the report's `latency_histogram`, log-spaced buckets) with p50 and p99
 * marked. A sweep's chart is payments/s per network size. Every bar carries its figures as data-*
 * attributes, so the picture can be checked against the report it came from.
 */
import type { StressReport } from './report.ts';

const W = 860;
const LEFT = 70;
const RIGHT = 20;
const PLOT_W = W - LEFT - RIGHT;
const PANEL_H = 220;
const OK = '#2e7d32';
const FAILED = '#c62828';
const BAR = '#1565c0';
const AXIS = '#444';

/** Text safe inside an element or an attribute value. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A round step for about `ticks` ticks up to `max`, and the axis top it gives (at least 1). */
function niceAxis(max: number, ticks = 5): { step: number; top: number } {
  if (!(max > 0)) return { step: 1, top: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { step, top: Math.ceil(max / step) * step };
}

const num = (x: number) => String(Math.round(x * 100) / 100);

/** `0.5 ms`, `12 ms`, `1.78 s`: a latency bound as an axis label. */
function ms(x: number): string {
  return x >= 1000 ? `${num(x / 1000)} s` : `${num(x)} ms`;
}

/** A y axis with its grid lines and labels, for values 0…top over a panel whose plot starts at `y0`. */
function yAxis(y0: number, step: number, top: number, label: string): string {
  const out: string[] = [];
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = y0 + PANEL_H - (v / top) * PANEL_H;
    out.push(
      `<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${num(y)}" y2="${num(y)}" stroke="#ddd"/>`,
      `<text x="${LEFT - 6}" y="${num(y + 4)}" text-anchor="end">${num(v)}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16 ${y0 + PANEL_H / 2}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`,
    `<line x1="${LEFT}" x2="${LEFT}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="${AXIS}"/>`,
    `<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${y0 + PANEL_H}" y2="${y0 + PANEL_H}" stroke="${AXIS}"/>`,
  );
  return out.join('\n');
}

function svg(height: number, title: string, body: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12" fill="${AXIS}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    `<text x="${LEFT}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Payments answered per second, succeeded below and failed above, and where each fault of --chaos came. */
function throughputPanel(r: StressReport, y0: number): string[] {
  const secs = r.throughput;
  const out = [`<text x="${LEFT}" y="${y0 - 10}" font-weight="bold">payments answered per second</text>`];
  const { step, top } = niceAxis(Math.max(0, ...secs.map((s) => s.ok + s.failed)));
  out.push(yAxis(y0, step, top, 'payments/s'));
  const n = Math.max(1, secs.length);
  const bw = PLOT_W / n;
  const y = (v: number) => y0 + PANEL_H - (v / top) * PANEL_H;
  for (const s of secs) {
    const x = LEFT + s.t * bw;
    out.push(
      `<g class="second" data-t="${s.t}" data-ok="${s.ok}" data-failed="${s.failed}">` +
        `<rect class="ok" x="${num(x + bw * 0.1)}" width="${num(bw * 0.8)}" y="${num(y(s.ok))}" height="${num(y0 + PANEL_H - y(s.ok))}" fill="${OK}"/>` +
        `<rect class="failed" x="${num(x + bw * 0.1)}" width="${num(bw * 0.8)}" y="${num(y(s.ok + s.failed))}" height="${num(y(s.ok) - y(s.ok + s.failed))}" fill="${FAILED}"/>` +
        '</g>',
    );
  }
  if (secs.length === 0)
    out.push(`<text x="${LEFT + PLOT_W / 2}" y="${y0 + PANEL_H / 2}" text-anchor="middle">no payment answered</text>`);
  // Seconds along the bottom: about ten labels whatever the length of the run.
  const every = Math.max(1, Math.ceil(n / 10));
  for (let t = 0; t <= n; t += every)
    out.push(`<text x="${num(LEFT + t * bw)}" y="${y0 + PANEL_H + 16}" text-anchor="middle">${t}</text>`);
  out.push(
    `<text x="${LEFT + PLOT_W / 2}" y="${y0 + PANEL_H + 34}" text-anchor="middle">seconds since the load started</text>`,
  );
  for (const f of r.faults) {
    const x = LEFT + Math.min(n, f.at) * bw;
    // Down from the fault until the node was back: restarted (kill) or its link restored (partition).
    const back = f.kind === 'kill' ? f.restarted_at : f.healed_at;
    if (back !== null && back !== undefined)
      out.push(
        `<rect class="down" x="${num(x)}" width="${num(Math.max(1, (Math.min(n, back) - Math.min(n, f.at)) * bw))}" y="${y0}" height="${PANEL_H}" fill="${FAILED}" fill-opacity="0.08"/>`,
      );
    out.push(
      `<line class="fault" data-at="${f.at}" data-node="${esc(f.node)}" x1="${num(x)}" x2="${num(x)}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="${FAILED}" stroke-dasharray="4 3"/>`,
      `<text x="${num(x + 3)}" y="${y0 + 12}" fill="${FAILED}">${esc(`${f.kind} ${f.node}`)}</text>`,
    );
  }
  out.push(
    `<rect x="${LEFT + PLOT_W - 150}" y="${y0 - 22}" width="10" height="10" fill="${OK}"/><text x="${LEFT + PLOT_W - 136}" y="${y0 - 13}">succeeded</text>`,
    `<rect x="${LEFT + PLOT_W - 70}" y="${y0 - 22}" width="10" height="10" fill="${FAILED}"/><text x="${LEFT + PLOT_W - 56}" y="${y0 - 13}">failed</text>`,
  );
  return out;
}

/** The latency histogram on its log-spaced buckets, with p50 and p99 where they fall. */
function latencyPanel(r: StressReport, y0: number): string[] {
  const { bounds_ms: bounds, counts } = r.latency_histogram;
  const out = [`<text x="${LEFT}" y="${y0 - 10}" font-weight="bold">latency of the succeeded payments</text>`];
  const { step, top } = niceAxis(Math.max(0, ...counts));
  out.push(yAxis(y0, step, top, 'payments'));
  if (counts.length === 0) {
    out.push(`<text x="${LEFT + PLOT_W / 2}" y="${y0 + PANEL_H / 2}" text-anchor="middle">no payment succeeded</text>`);
    return out;
  }
  const bw = PLOT_W / counts.length;
  const lo = Math.log10(bounds[0]!);
  const span = Math.log10(bounds[bounds.length - 1]!) - lo;
  const xOf = (v: number) => LEFT + ((Math.log10(v) - lo) / span) * PLOT_W;
  counts.forEach((c, i) => {
    const h = (c / top) * PANEL_H;
    out.push(
      `<rect class="bucket" data-lo-ms="${bounds[i]}" data-hi-ms="${bounds[i + 1]}" data-count="${c}" x="${num(LEFT + i * bw + 1)}" width="${num(Math.max(1, bw - 2))}" y="${num(y0 + PANEL_H - h)}" height="${num(h)}" fill="${BAR}"/>`,
    );
  });
  const every = Math.max(1, Math.ceil(bounds.length / 12));
  bounds.forEach((b, i) => {
    if (i % every === 0)
      out.push(`<text x="${num(LEFT + i * bw)}" y="${y0 + PANEL_H + 16}" text-anchor="middle">${ms(b)}</text>`);
  });
  out.push(
    `<text x="${LEFT + PLOT_W / 2}" y="${y0 + PANEL_H + 34}" text-anchor="middle">latency, from the first attempt to the answer (log scale)</text>`,
  );
  for (const [name, v, dy] of [
    ['p50', r.p50_ms, 12],
    ['p99', r.p99_ms, 26],
  ] as const) {
    if (!(v > 0)) continue;
    const x = Math.min(LEFT + PLOT_W, Math.max(LEFT, xOf(v)));
    out.push(
      `<line class="${name}" data-ms="${v}" x1="${num(x)}" x2="${num(x)}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="#000" stroke-dasharray="6 3"/>`,
      `<text x="${num(x + 4)}" y="${y0 + dy}" fill="#000">${name} ${ms(v)}</text>`,
    );
  }
  return out;
}

/** The chart of one run, from its report alone. */
export function reportChart(r: StressReport): string {
  const failed = Object.values(r.payments_failed).reduce((a, b) => a + b, 0);
  const title = `teechain stress: ${r.network.treasuries.length} treasuries (${r.network.source}), ${r.network.topology}, ${r.workload.pattern}, seed ${r.workload.seed}: ${r.payments_ok} ok, ${failed} failed, ${r.payments_per_s} payments/s, verified ${r.verification.ok ? 'yes' : 'NO'}${r.interrupted ? ' (interrupted)' : ''}`;
  const top = 70;
  const second = top + PANEL_H + 90;
  return svg(second + PANEL_H + 50, title, [...throughputPanel(r, top), ...latencyPanel(r, second)]);
}

/** One bar per network size of a sweep: its payments/s (a size without figures gets none, and says why). */
export function sweepChart(
  title: string,
  entries: Array<{ nodes: number; payments_per_s: number | null; verified: boolean }>,
): string {
  const y0 = 70;
  const out: string[] = [
    `<text x="${LEFT}" y="${y0 - 10}" font-weight="bold">succeeded payments per second, by network size</text>`,
  ];
  const { step, top } = niceAxis(Math.max(0, ...entries.map((e) => e.payments_per_s ?? 0)));
  out.push(yAxis(y0, step, top, 'payments/s'));
  const bw = PLOT_W / Math.max(1, entries.length);
  entries.forEach((e, i) => {
    const x = LEFT + i * bw;
    const v = e.payments_per_s;
    const h = v === null ? 0 : (v / top) * PANEL_H;
    out.push(
      `<rect class="size" data-nodes="${e.nodes}" data-payments-per-s="${v ?? ''}" data-verified="${e.verified}" x="${num(x + bw * 0.2)}" width="${num(bw * 0.6)}" y="${num(y0 + PANEL_H - h)}" height="${num(h)}" fill="${e.verified ? BAR : FAILED}"/>`,
      `<text x="${num(x + bw / 2)}" y="${num(y0 + PANEL_H - h - 4)}" text-anchor="middle">${v === null ? 'no figures' : `${num(v)}${e.verified ? '' : ' (not verified)'}`}</text>`,
      `<text x="${num(x + bw / 2)}" y="${y0 + PANEL_H + 16}" text-anchor="middle">${e.nodes}</text>`,
    );
  });
  out.push(`<text x="${LEFT + PLOT_W / 2}" y="${y0 + PANEL_H + 34}" text-anchor="middle">treasuries</text>`);
  return svg(y0 + PANEL_H + 50, title, out);
}
