/** Measurement: a hash of exactly the code that runs, stable across processes and directories. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bundleEnclave, measureBundle } from '../enclave-sim/index.ts';
import {
  copyExampleProject,
  EXAMPLE_DIR,
  EXAMPLE_ENTRY,
  PROJECT_ROOT,
  tempDir,
} from './fixtures/example-enclave/harness.ts';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('measurement')));
after(() => cleanup());

test('the measurement is the SHA-256 of the exact bundle, with no absolute paths in it', async () => {
  const bundle = await bundleEnclave(EXAMPLE_ENTRY);
  assert.equal(bundle.measurement, createHash('sha256').update(bundle.code, 'utf8').digest('hex'));
  assert.equal(await measureBundle(EXAMPLE_ENTRY), bundle.measurement);
  assert.ok(!bundle.code.includes(PROJECT_ROOT), 'no absolute paths in the bundle');
  assert.ok(
    bundle.inputs.includes('enclave-sim/runtime.ts') &&
      bundle.inputs.includes('test/fixtures/example-enclave/program.ts'),
  );
  assert.ok(
    !bundle.inputs.some((i) => i.includes('esbuild') || i.endsWith('enclave-sim/platform.ts')),
    'no host code in the enclave',
  );
});

test('the same code gives the same measurement in another process', async () => {
  const here = await measureBundle(EXAMPLE_ENTRY);
  // Another cwd too: measurements must not depend on it.
  const tsx = import.meta.resolve('tsx');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', tsx, join(EXAMPLE_DIR, 'print-measurement.ts')],
    { cwd: dir },
  );
  assert.equal(stdout.trim(), here);
});

test('the same code in another directory measures the same; one changed byte changes it', async () => {
  const original = await measureBundle(EXAMPLE_ENTRY);
  const copy = await copyExampleProject(join(dir, 'copy'));
  assert.equal(await measureBundle(copy), original, 'location does not matter');

  const variant = await copyExampleProject(join(dir, 'variant'));
  const src = await readFile(variant, 'utf8');
  const changed = src.replace("'example-wallet/v1'", "'example-wallet/v2'");
  assert.equal(changed.length, src.length);
  assert.equal([...changed].filter((c, i) => c !== src[i]).length, 1, 'exactly one byte differs');
  await writeFile(variant, changed);
  assert.notEqual(await measureBundle(variant), original);
});

test('an enclave program that imports host-only code does not build', async () => {
  const copy = await copyExampleProject(join(dir, 'guard'));
  await cp(join(PROJECT_ROOT, 'enclave-sim/index.ts'), join(copy, '../../../../enclave-sim/index.ts'));
  const bad = join(copy, '..', 'bad-program.ts');
  await writeFile(bad, "import { Platform } from '../../../enclave-sim/index';\nconsole.log(Platform);\n");
  await assert.rejects(bundleEnclave(bad), /host-only/);
});
