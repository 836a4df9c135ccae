/**
 * The two-slot durable record behind the sealed store and the platform counters: the newest intact
 * record wins, a torn write of the newest slot falls back to the previous record, reopening finds it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SlotFile } from '../enclave-sim/durable-file.ts';
import { tempDir } from './fixtures/example-enclave/harness.ts';

const text = (b: Uint8Array | null) => (b ? new TextDecoder().decode(b) : null);
const bytes = (s: string) => new TextEncoder().encode(s);

test('slot file: newest record wins, across reopen; empty reads null', async () => {
  const { dir, cleanup } = await tempDir('slots-');
  const file = join(dir, 'rec');
  const s = await SlotFile.open(file);
  assert.equal(await s.read(), null);
  for (let i = 1; i <= 5; i++) await s.write(bytes(`v${i}-${'x'.repeat(i * 100)}`));
  assert.match(text(await s.read())!, /^v5-/);
  await s.write(bytes('short')); // shrinks its slot
  assert.equal(text(await s.read()), 'short');
  await s.close();
  const again = await SlotFile.open(file);
  assert.equal(text(await again.read()), 'short');
  assert.equal((await stat(`${file}.a`)).mode & 0o777, 0o600);
  await again.close();
  await cleanup();
});

test('slot file: a torn write of the newest slot falls back to the previous record', async () => {
  const { dir, cleanup } = await tempDir('slots-');
  const file = join(dir, 'rec');
  const s = await SlotFile.open(file);
  await s.write(bytes('first'));
  await s.write(bytes('second')); // lands in slot b
  await s.close();
  // A crash mid-write: the slot being written holds a partial record.
  const h = await open(`${file}.b`, 'r+');
  const { size } = await h.stat();
  await h.truncate(size - 3);
  await h.close();
  const r = await SlotFile.open(file);
  assert.equal(text(await r.read()), 'first');
  // and the next write goes over the damaged slot, becoming the newest
  await r.write(bytes('third'));
  assert.equal(text(await r.read()), 'third');
  await r.close();
  const flip = await open(`${file}.a`, 'r+');
  await flip.write(Buffer.from([0xff]), 0, 1, 60);
  await flip.close();
  const r2 = await SlotFile.open(file);
  assert.equal(text(await r2.read()), 'third', 'a corrupted older slot does not matter');
  await r2.close();
  await cleanup();
});

test('slot file: a write made through another handle is noticed before the next write', async () => {
  const { dir, cleanup } = await tempDir('slots-');
  const file = join(dir, 'rec');
  const owner = await SlotFile.open(file);
  await owner.write(bytes('one'));
  const other = await SlotFile.open(file);
  await other.write(bytes('two-from-another-handle'));
  await other.close();
  // The owner's read-modify-write sees the other handle's record, not its own stale copy, and its
  // write becomes the newest (a higher sequence number, in the slot that does not hold 'two').
  let seen: string | null = null;
  await owner.update((current) => {
    seen = text(current);
    return bytes('three');
  });
  assert.equal(seen, 'two-from-another-handle');
  assert.equal(text(await owner.read()), 'three');
  await owner.close();
  const reopened = await SlotFile.open(file);
  assert.equal(text(await reopened.read()), 'three');
  await reopened.close();
  await cleanup();
});

test('slot file: a record much smaller than its slot truncates it; a small shrink leaves stale bytes that are never read', async () => {
  const { dir, cleanup } = await tempDir('slots-');
  const file = join(dir, 'rec');
  const s = await SlotFile.open(file);
  await s.write(bytes('a'.repeat(200_000))); // slot a
  await s.write(bytes('b'.repeat(300))); // slot b
  await s.write(bytes('c'.repeat(100))); // slot a again: 200 kB -> truncated
  assert.ok((await stat(`${file}.a`)).size < 1000);
  await s.write(bytes('d'.repeat(250))); // slot b: 300 -> 250, kept at its size
  assert.ok((await stat(`${file}.b`)).size > 48 + 250);
  assert.equal(text(await s.read()), 'd'.repeat(250));
  await s.close();
  const again = await SlotFile.open(file);
  assert.equal(text(await again.read()), 'd'.repeat(250));
  await again.close();
  await cleanup();
});
