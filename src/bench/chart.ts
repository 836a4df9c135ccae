/**
 * A dependency-free SVG chart of benchmark results: payments/s per scenario (log scale) beside its
 * p50 and p99 latency. Plain SVG so it renders anywhere, including a README.
 */
export interface ChartRow {
  name: string;
  /** The baselines (Lightning-style model, LDK) get their own colour. */
  group: string;
  payments_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderChart(rows: ChartRow[], title: string): string {
  const rowH = 22;
  const labelW = 330;
  const barW = 360;
  const latW = 260;
  const top = 56;
  const height = top + rows.length * rowH + 30;
  const width = labelW + barW + latW + 40;
  const maxTput = Math.max(10, ...rows.map((r) => r.payments_per_s));
  const logMax = Math.log10(maxTput * 1.2);
  const maxLat = Math.max(1, ...rows.map((r) => r.p99_ms).filter(Number.isFinite));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${labelW}" y="44">payments/s (log scale)</text>`,
    `<text x="${labelW + barW + 20}" y="44">latency ms: p50 (dark) / p99 (light)</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const w = r.payments_per_s > 0 ? Math.max(2, (Math.log10(Math.max(1, r.payments_per_s)) / logMax) * barW) : 0;
    const color = r.group.startsWith('lightning') || r.group === 'ldk' ? '#d9822b' : '#2b6cb0';
    out.push(`<text x="10" y="${y + 14}">${esc(r.name)}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`);
    out.push(
      `<text x="${labelW + w + 4}" y="${y + 14}">${Math.round(r.payments_per_s).toLocaleString('en-US')}</text>`,
    );
    const lx = labelW + barW + 20;
    const p99 = Number.isFinite(r.p99_ms) ? (r.p99_ms / maxLat) * (latW - 70) : 0;
    const p50 = Number.isFinite(r.p50_ms) ? (r.p50_ms / maxLat) * (latW - 70) : 0;
    out.push(`<rect x="${lx}" y="${y + 3}" width="${p99.toFixed(1)}" height="${rowH - 6}" fill="#a0aec0"/>`);
    out.push(`<rect x="${lx}" y="${y + 3}" width="${p50.toFixed(1)}" height="${rowH - 6}" fill="#4a5568"/>`);
    out.push(`<text x="${lx + p99 + 4}" y="${y + 14}">${fmt(r.p50_ms)} / ${fmt(r.p99_ms)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function fmt(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(0);
}
