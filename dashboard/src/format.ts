/** Display helpers. Amounts arrive as decimal strings and are grouped as text, never through floats. */

export function sat(v: string | null | undefined): string {
  if (v === null || v === undefined) return '–';
  const neg = v.startsWith('-');
  const digits = neg ? v.slice(1) : v;
  return (neg ? '-' : '') + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function short(id: string | null | undefined, n = 10): string {
  if (!id) return '–';
  return id.length > n + 1 ? `${id.slice(0, n)}…` : id;
}

export function num(v: number | null | undefined): string {
  return v === null || v === undefined ? '–' : String(v);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
