// run-tests lane: light
/**
 * The suite cannot hang and cannot pass by running nothing: scripts/run-tests.mjs run for real on the
 * fixtures in test/fixtures/runner (a file that hangs, one that fails with a child running, one with no
 * test), and the process registry of test/helpers/processes.ts on a child that ignores SIGTERM.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTracked, stopChild } from './helpers/processes.ts';

const ROOT = join(import.meta.dirname, '..');

/** scripts/run-tests.mjs with `args` and `env`, to its end; killed after 3 min (`killed`) if it hangs. */
function runTests(args: string[], env: Record<string, string>) {
  // Without the marker node puts on the files it runs: with it, a nested `node --test` would run nothing.
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  return new Promise<{ code: number | null; killed: boolean; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['scripts/run-tests.mjs', ...args],
      { cwd: ROOT, env: { ...outer, ...env }, timeout: 180_000 },
      (err, stdout, stderr) => {
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          killed: err?.killed === true,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** Alive and not a zombie (an exited child whose new parent has not reaped it is gone for our purposes). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is gone within `ms`: a SIGKILL sent just before the run ended takes effect only once the
 * kernel next schedules that process, which on a loaded machine can come after the run has exited (seen
 * to take over 10 s with a dozen processes waiting per core). A wait, not a timing claim: only a process
 * that stays alive fails it.
 */
async function goneWithin(pid: number, ms = 30_000): Promise<boolean> {
  for (const end = Date.now() + ms; alive(pid); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) return false;
  }
  return true;
}

/** Where a fixture writes its child's pid; `reap()` SIGKILLs that child if a broken runner let it live. */
function pidFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'teechain-runner-')), 'pid');
  const pid = () => Number(readFileSync(file, 'utf8'));
  return {
    file,
    pid,
    reap: () => {
      if (existsSync(file) && alive(pid())) process.kill(-pid(), 'SIGKILL');
    },
  };
}

/** The fixture run failed, by itself (not killed by this test's timeout). */
function failedAlone(r: { code: number | null; killed: boolean; stdout: string; stderr: string }) {
  assert.equal(r.killed, false, `run-tests.mjs hung: ${r.stdout}${r.stderr}`);
  assert.equal(r.code, 1, r.stdout + r.stderr);
}

// Concurrently: most of these wait out a timeout of their fixture.
describe('scripts/run-tests.mjs', { concurrency: true }, () => {
  test('a filter that matches no file fails the run and says so', async () => {
    const r = await runTests(['nomatch-at-all'], {});
    failedAlone(r);
    assert.match(r.stderr, /run-tests: no test file under test\/ matches "nomatch-at-all": nothing ran/);
  });

  test('a file that registers no test fails the run', async () => {
    const r = await runTests(['empty'], { TEST_DIR: 'test/fixtures/runner' });
    failedAlone(r);
    assert.match(r.stderr, /run-tests: .*empty\.test\.ts ran no test/);
  });

  test('a hanging test is stopped by the per-file timeout, and the child it started is killed', async (t) => {
    const p = pidFile();
    t.after(p.reap);
    const r = await runTests(['hang'], {
      TEST_DIR: 'test/fixtures/runner',
      TEST_TIMEOUT_MS: '20000',
      RUNNER_PID_FILE: p.file,
    });
    failedAlone(r);
    assert.match(r.stdout, /test timed out after 20000ms/);
    assert.ok(existsSync(p.file), 'the hanging test had started its child');
    assert.equal(await goneWithin(p.pid()), true, `child ${p.pid()} outlived the timed-out file`);
    const inProcess = Number(readFileSync(`${p.file}.in-process`, 'utf8'));
    assert.equal(
      await goneWithin(inProcess),
      true,
      `the in-process lane's hanging file ${inProcess} outlived its timeout`,
    );
  });

  test('a run past its watchdog is stopped and fails, and leaves no process behind', async (t) => {
    const p = pidFile();
    t.after(p.reap);
    const r = await runTests(['hang'], {
      TEST_DIR: 'test/fixtures/runner',
      TEST_WATCHDOG_MS: '20000',
      RUNNER_PID_FILE: p.file,
    });
    failedAlone(r);
    assert.match(r.stderr, /run-tests: the run passed its watchdog \(TEST_WATCHDOG_MS=20000\)/);
    assert.ok(existsSync(p.file), 'the hanging test had started its child');
    assert.equal(await goneWithin(p.pid()), true, `child ${p.pid()} outlived the stopped run`);
    const inProcess = Number(readFileSync(`${p.file}.in-process`, 'utf8'));
    assert.equal(await goneWithin(inProcess), true, `the in-process lane's file ${inProcess} outlived the stopped run`);
  });

  test('a test that fails before its cleanup leaves no process: the registry SIGKILLs a child that ignores SIGTERM', async (t) => {
    const p = pidFile();
    t.after(p.reap);
    const r = await runTests(['fail'], {
      TEST_DIR: 'test/fixtures/runner',
      TEST_KILL_GRACE_MS: '1000',
      TEST_TIMEOUT_MS: '60000',
      RUNNER_PID_FILE: p.file,
    });
    failedAlone(r);
    assert.match(r.stdout, /this fixture fails on purpose/);
    assert.match(r.stdout + r.stderr, /stopped 1 child process\(es\) still running at the end of the file/);
    assert.equal(
      readFileSync(`${p.file}.end`, 'utf8'),
      'SIGKILL',
      'the child ignored SIGTERM, so only SIGKILL ended it',
    );
    assert.equal(await goneWithin(p.pid()), true, `child ${p.pid()} outlived its test file`);
  });
});

// The lanes: files marked `// run-tests lane: in-process` run beside the serial lane, then those marked
// `// run-tests lane: light` in the same slot; they count like the others.
describe('scripts/run-tests.mjs lanes', { concurrency: true }, () => {
  const meetDir = () => mkdtempSync(join(tmpdir(), 'teechain-runner-meet-'));

  test('a file marked in-process runs beside the serial lane, and both lanes are counted', async () => {
    const r = await runTests(['meet'], {
      TEST_DIR: 'test/fixtures/runner',
      RUNNER_MEET_DIR: meetDir(),
      RUNNER_MEET_MS: '120000',
    });
    assert.equal(r.killed, false, `run-tests.mjs hung: ${r.stdout}${r.stderr}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /── in-process lane: 1 file\(s\), 1 at a time/);
    assert.match(r.stdout, /run-tests: 2 tests, 0 failed, .*serial lane 1 files .*in-process lane 1 files/);
  });

  test('TEST_LANES=1 runs every file in the one serial lane: the two files never meet', async () => {
    const r = await runTests(['meet'], {
      TEST_DIR: 'test/fixtures/runner',
      TEST_LANES: '1',
      RUNNER_MEET_DIR: meetDir(),
      RUNNER_MEET_MS: '3000',
    });
    failedAlone(r);
    assert.match(r.stdout, /inproc-meet never met serial-meet/, 'the first file ran alone');
    assert.doesNotMatch(r.stdout, /── in-process lane:/, 'no second lane');
  });

  test('a failing file in the in-process lane fails the run although the serial lane passes', async () => {
    const r = await runTests(['inproc-broken', 'serial-ok'], { TEST_DIR: 'test/fixtures/runner' });
    failedAlone(r);
    assert.match(r.stdout, /this in-process fixture fails on purpose/);
    assert.match(r.stdout, /run-tests: 2 tests, 1 failed/);
  });

  test('a file with no test in the in-process lane fails the run', async () => {
    const r = await runTests(['inproc-blank', 'serial-ok'], { TEST_DIR: 'test/fixtures/runner' });
    failedAlone(r);
    assert.match(r.stderr, /run-tests: .*inproc-blank\.test\.ts ran no test/);
  });

  test('a file marked light runs once the in-process lane has ended, beside the serial lane, and is counted', async () => {
    const r = await runTests(['slot-'], {
      TEST_DIR: 'test/fixtures/runner',
      RUNNER_MEET_DIR: meetDir(),
      RUNNER_MEET_MS: '120000',
    });
    assert.equal(r.killed, false, `run-tests.mjs hung: ${r.stdout}${r.stderr}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /── light lane: 1 file\(s\), 1 at a time, after the in-process lane, beside the serial lane/,
    );
    assert.match(
      r.stdout,
      /run-tests: 3 tests, 0 failed, .*serial lane 1 files .*in-process lane 1 files .*light lane 1 files/,
    );
  });

  test('TEST_LANES=1 runs a light file in the serial lane too: it never meets the serial file', async () => {
    const r = await runTests(['slot-'], {
      TEST_DIR: 'test/fixtures/runner',
      TEST_LANES: '1',
      RUNNER_MEET_DIR: meetDir(),
      RUNNER_MEET_MS: '3000',
    });
    failedAlone(r);
    assert.match(r.stdout, /never met/);
    assert.doesNotMatch(r.stdout, /── (in-process|light) lane:/, 'no other lane');
  });

  test('a failing file in the light lane fails the run although the serial lane passes', async () => {
    const r = await runTests(['light-broken', 'serial-ok'], { TEST_DIR: 'test/fixtures/runner' });
    failedAlone(r);
    assert.match(r.stdout, /this light fixture fails on purpose/);
    assert.match(r.stdout, /run-tests: 2 tests, 1 failed/);
  });

  test('a lane setting that is not 1 or 2 is refused before anything runs', async () => {
    const r = await runTests(['serial-ok'], { TEST_DIR: 'test/fixtures/runner', TEST_LANES: '3' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /run-tests: TEST_LANES is 1 \(one lane\) or 2/);
    assert.doesNotMatch(r.stdout, /the serial fixture passes/);
  });
});

test('stopChild falls back to SIGKILL when SIGTERM does not end a child', { timeout: 60_000 }, async (t) => {
  const child = spawnTracked(
    process.execPath,
    ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  await once(child.stdout!, 'data');
  assert.deepEqual(await stopChild(child, 'SIGTERM', 500), { code: null, signal: 'SIGKILL' });
  // One that does end on SIGTERM is not SIGKILLed.
  const polite = spawnTracked(process.execPath, ['-e', "console.log('ready'); setInterval(() => {}, 1000);"], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(polite.stdout!, 'data');
  assert.deepEqual(await stopChild(polite, 'SIGTERM', 60_000), { code: null, signal: 'SIGTERM' });
});
