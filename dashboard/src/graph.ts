/**
 * The network as a graph (SVG): nodes on a circle, coloured by attestation, and one curve per channel
 * with each side's balance written near that side. Redrawn whole on every snapshot: it has no controls.
 */
import type { ChannelSnapshot, NodeSnapshot } from '../../src/dashboard/protocol.ts';
import { esc, sat } from './format.ts';

const W = 640;
const H = 420;
const R = 34;

interface Point {
  x: number;
  y: number;
}

export function drawGraph(svg: SVGSVGElement, nodes: NodeSnapshot[], channels: ChannelSnapshot[]): void {
  const pos = new Map<string, Point>();
  const radius = nodes.length <= 1 ? 0 : Math.min(W, H) / 2 - R - 40;
  nodes.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, nodes.length);
    pos.set(n.name, { x: W / 2 + radius * Math.cos(a), y: H / 2 + radius * Math.sin(a) });
  });

  // Several channels between the same two nodes (a settled one and its successor) fan out side by side.
  const pairCount = new Map<string, number>();
  const pairIndex = new Map<string, number>();
  const pairKey = (c: ChannelSnapshot) => [c.a.node, c.b.node].sort().join('|');
  for (const c of channels) pairCount.set(pairKey(c), (pairCount.get(pairKey(c)) ?? 0) + 1);

  const edges: string[] = [];
  for (const c of channels) {
    const p = pos.get(c.a.node);
    const q = pos.get(c.b.node);
    if (!p || !q) continue;
    const key = pairKey(c);
    const k = pairIndex.get(key) ?? 0;
    pairIndex.set(key, k + 1);
    const offset = (k - ((pairCount.get(key) ?? 1) - 1) / 2) * 46;
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const len = Math.hypot(dx, dy) || 1;
    // Normal pointing the same way whichever end is the opener, so the fan is stable.
    const flip = c.a.node < c.b.node ? 1 : -1;
    const ctrl = { x: (p.x + q.x) / 2 - (dy / len) * offset * flip, y: (p.y + q.y) / 2 + (dx / len) * offset * flip };
    const at = (t: number): Point => ({
      x: (1 - t) ** 2 * p.x + 2 * (1 - t) * t * ctrl.x + t ** 2 * q.x,
      y: (1 - t) ** 2 * p.y + 2 * (1 - t) * t * ctrl.y + t ** 2 * q.y,
    });
    const la = at(0.3);
    const lb = at(0.7);
    const mid = at(0.5);
    const cls = `edge ${c.status}${c.peer_connected ? '' : ' disconnected'}`;
    edges.push(`<g class="${cls}" data-channel="${esc(c.channel_id)}">
      <path d="M${p.x},${p.y} Q${ctrl.x},${ctrl.y} ${q.x},${q.y}"><title>${esc(c.channel_id)} (${c.status})</title></path>
      <text x="${la.x}" y="${la.y}" data-testid="edge-balance" data-side="a">${sat(c.a.balance_sat)}</text>
      <text x="${lb.x}" y="${lb.y}" data-testid="edge-balance" data-side="b">${sat(c.b.balance_sat)}</text>
      ${c.status === 'closed' ? `<text class="tag" x="${mid.x}" y="${mid.y + 14}">settled</text>` : ''}
    </g>`);
  }

  const circles = nodes.map((n) => {
    const p = pos.get(n.name)!;
    const state = !n.reachable ? 'down' : n.attestation.verified ? 'verified' : 'unverified';
    const badge = !n.reachable ? 'unreachable' : n.attestation.verified ? '✓ attested' : '✗ not verified';
    return `<g class="node ${state}" data-node="${esc(n.name)}" data-testid="graph-node">
      <circle cx="${p.x}" cy="${p.y}" r="${R}"><title>${esc(n.node_id)}\n${esc(n.attestation.detail)}</title></circle>
      <text class="name" x="${p.x}" y="${p.y + 5}">${esc(n.name)}</text>
      <text class="badge" x="${p.x}" y="${p.y + R + 16}">${badge}</text>
    </g>`;
  });
  svg.innerHTML = `<g class="edges">${edges.join('')}</g><g class="nodes">${circles.join('')}</g>`;
}
