// run-tests lane: in-process
/**
 * The enclave bundle's on-disk cache (enclave-sim/bundle-cache.ts): a second build of unchanged inputs is
 * a hit with the very same code and measurement; an edited input, a damaged cache file or another esbuild
 * version is a miss that builds afresh; a build during which an input changed is never stored. Each case
 * builds a small program in its own package directory, so nothing here depends on the treasury's code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundleUncached } from '../enclave-sim/bundle.ts';
import { readCachedBundle, writeCachedBundle } from '../enclave-sim/bundle-cache.ts';

function program(greeting: string) {
  const root = mkdtempSync(join(tmpdir(), 'bundle-cache-'));
  writeFileSync(join(root, 'package.json'), '{"name":"p","type":"module"}');
  writeFileSync(join(root, 'dep.ts'), `export const greeting: string = ${JSON.stringify(greeting)};\n`);
  writeFileSync(join(root, 'entry.ts'), `import { greeting } from './dep.ts';\nconsole.log(greeting);\n`);
  // Inputs older than any build: a build stores its result (see the mid-build case below).
  const past = new Date(Date.now() - 60_000);
  for (const f of ['dep.ts', 'entry.ts']) utimesSync(join(root, f), past, past);
  return { root, entry: join(root, 'entry.ts'), cache: join(root, 'cache') };
}

test('unchanged inputs: the second build is a hit with the same code and measurement', async () => {
  const p = program('hello');
  const first = await buildBundleUncached(p.entry, p.cache);
  const second = await buildBundleUncached(p.entry, p.cache);
  assert.equal(first.cached, false);
  assert.equal(second.cached, true);
  assert.equal(second.code, first.code);
  assert.equal(second.measurement, first.measurement);
  assert.deepEqual(second.inputs, first.inputs);
  assert.ok(first.code.includes('"hello"'));
});

test('an edited input is a miss: the new code runs under its own measurement', async () => {
  const p = program('hello');
  const first = await buildBundleUncached(p.entry, p.cache);
  writeFileSync(join(p.root, 'dep.ts'), `export const greeting: string = "changed";\n`);
  const second = await buildBundleUncached(p.entry, p.cache);
  assert.equal(second.cached, false);
  assert.ok(second.code.includes('"changed"') && !second.code.includes('"hello"'));
  assert.notEqual(second.measurement, first.measurement);
});

test('a damaged cache file, or a cache from another esbuild, is a miss', async () => {
  const p = program('hello');
  const first = await buildBundleUncached(p.entry, p.cache);
  const [name] = readdirSync(p.cache);
  const file = join(p.cache, name!);
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { code: string };
  writeFileSync(file, JSON.stringify({ ...saved, code: saved.code.replace('hello', 'evil!') }));
  const again = await buildBundleUncached(p.entry, p.cache);
  assert.equal(again.cached, false, 'code that does not hash as stored is not used');
  assert.equal(again.measurement, first.measurement);
  assert.equal(readCachedBundle(p.cache, p.root, { entry: 'entry.ts', esbuild: '0.0.0-other' }), null);
  assert.ok(readCachedBundle(p.cache, p.root, JSON.parse(readFileSync(file, 'utf8')).key));
  writeFileSync(file, '{"format":1,');
  assert.equal((await buildBundleUncached(p.entry, p.cache)).cached, false, 'half a file is a miss');
});

test('an input changed while the build ran: the result is not stored', () => {
  const p = program('hello');
  const key = { entry: 'entry.ts', esbuild: 'x' };
  const built = { code: 'code', inputs: ['dep.ts', 'entry.ts'], externals: [] };
  writeCachedBundle(p.cache, p.root, key, built, Date.now() - 120_000);
  assert.equal(readCachedBundle(p.cache, p.root, key), null, 'dep.ts is newer than the build start');
  writeCachedBundle(p.cache, p.root, key, built, Date.now());
  assert.deepEqual(readCachedBundle(p.cache, p.root, key), built);
});
