/**
 * Keyed table rows updated in place: a row stays the same element from one snapshot to the next (only
 * changed cells are written), so a button in it is never replaced under the user's pointer.
 */

export interface Cell {
  text: string;
  title?: string;
  className?: string;
}

export interface Row {
  key: string;
  cells: Cell[];
  /** Makes the row's last cell (buttons), once, when the row first appears. */
  actions?: () => HTMLElement;
}

export function syncRows(tbody: HTMLElement, rows: Row[], empty: string, columns: number): void {
  const existing = new Map<string, HTMLTableRowElement>();
  for (const tr of Array.from(tbody.querySelectorAll<HTMLTableRowElement>(':scope > tr[data-key]')))
    existing.set(tr.dataset.key!, tr);
  tbody.querySelector(':scope > tr.empty')?.remove();
  const wanted = new Set(rows.map((r) => r.key));
  for (const [key, tr] of existing) if (!wanted.has(key)) tr.remove();
  rows.forEach((r, i) => {
    let tr = existing.get(r.key);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.key = r.key;
      for (let c = 0; c < r.cells.length; c++) tr.appendChild(document.createElement('td'));
      if (r.actions) {
        const td = document.createElement('td');
        td.appendChild(r.actions());
        tr.appendChild(td);
      }
    }
    r.cells.forEach((cell, c) => {
      const td = tr!.children[c] as HTMLTableCellElement;
      if (td.textContent !== cell.text) td.textContent = cell.text;
      if ((td.title || undefined) !== cell.title) td.title = cell.title ?? '';
      if ((td.className || undefined) !== cell.className) td.className = cell.className ?? '';
    });
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] ?? null);
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = document.createElement('td');
    td.colSpan = columns;
    td.textContent = empty;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}
