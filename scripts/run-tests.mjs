#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in test runner (through tsx), so the
// closing summary is node's standard one. Two lanes run side by side:
// - the serial lane: files one at a time (TEST_CONCURRENCY, default 1). Most files start real processes,
//   chains and sockets, and the machine has two cores;
// - the in-process lane: files whose first lines hold the marker `// run-tests lane: in-process` (no child
//   process and nothing that races the clock: enclave cores, test doubles, the embedded chain, all in the
//   file's own process), beside the serial lane, one at a time (TEST_IN_PROCESS_CONCURRENCY, default 1: the
//   serial lane is the longer one, and more in-process files at once would only take its CPU sooner).
//   Its report is printed when it ends.
// - the light lane: files marked `// run-tests lane: light` (end-to-end files that start processes but leave
//   the CPU mostly idle, waiting on their children, sockets and the chain, and race no clock), one at a time
//   (TEST_LIGHT_CONCURRENCY, default 1), in the in-process lane's slot once that lane has ended: beside the
//   serial lane, never beside an in-process file, so at most two files run at once as before. The in-process
//   lane ends long before the serial lane; the light lane fills that idle slot. Its report is printed when it ends.
// TEST_LANES=1 puts every file in the serial lane (one file at a time, as before there were lanes).
//
// A run cannot hang and cannot pass by running nothing:
// - each file has a timeout, TEST_TIMEOUT_MS (default 15 min, far above the slowest file): node 20's
//   --test-timeout applies to each file as a whole, and a file that passes it is stopped and reported failed;
// - the whole run has a watchdog, TEST_WATCHDOG_MS (default 60 min): past it every process of the run
//   (both lanes) is stopped (SIGTERM, then SIGKILL) and the run fails;
// - a filter that matches no file, a lane whose summary reports no test, or a file that registered no test fails.
// TEST_DIR (default test) is where the files are looked for; directories named fixtures are skipped.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';

/** The markers, on a line of their own among a file's first lines, that put the file in another lane. */
const IN_PROCESS = /^\/\/ run-tests lane: in-process\b/m;
const LIGHT = /^\/\/ run-tests lane: light\b/m;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'fixtures') out.push(...findTests(p));
    } else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The first 4 KiB of `file` (where the marker must be: above the imports). */
function head(file) {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function positive(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`run-tests: ${name} must be a positive whole number (got ${JSON.stringify(v)})`);
    process.exit(2);
  }
  return n;
}

const root = process.env.TEST_DIR ?? 'test';
const filter = process.argv.slice(2);
let files = findTests(root);
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(
    `run-tests: no test file under ${root}/ matches ${filter.map((s) => JSON.stringify(s)).join(' or ') || '*.test.ts'}: nothing ran, so nothing passed`,
  );
  process.exit(1);
}
const timeoutMs = positive('TEST_TIMEOUT_MS', 15 * 60_000);
const watchdogMs = positive('TEST_WATCHDOG_MS', 60 * 60_000);
const laneCount = positive('TEST_LANES', 2);
if (laneCount > 2) {
  console.error(
    `run-tests: TEST_LANES is 1 (one lane) or 2 (the serial lane beside the in-process and light lanes), not ${laneCount}`,
  );
  process.exit(2);
}
const marked = (marker) => (laneCount === 2 ? files.filter((f) => marker.test(head(f))) : []);
const inProcess = marked(IN_PROCESS);
const light = marked(LIGHT).filter((f) => !inProcess.includes(f));
const serial = files.filter((f) => !inProcess.includes(f) && !light.includes(f));
// A slot runs its lanes one after the other; the slots run side by side.
const slots = [
  [{ name: 'serial', files: serial, concurrency: positive('TEST_CONCURRENCY', 1) }],
  [
    { name: 'in-process', files: inProcess, concurrency: positive('TEST_IN_PROCESS_CONCURRENCY', 1) },
    { name: 'light', files: light, concurrency: positive('TEST_LIGHT_CONCURRENCY', 1) },
  ],
]
  .map((slot) => slot.filter((l) => l.files.length > 0))
  .filter((slot) => slot.length > 0);

const tmp = mkdtempSync(join(tmpdir(), 'run-tests-'));
const started = Date.now();
/**
 * Starts one lane: node's test runner in its own process group (so the watchdog reaches every file process
 * and what they started), with the spec reporter for people (stdout for the first lane, a file printed when
 * it ends for the others) and a TAP copy to read the summary from.
 */
function startLane(lane, { toStdout, after }) {
  const tap = join(tmp, `${lane.name}.tap`);
  const spec = toStdout ? 'stdout' : join(tmp, `${lane.name}.spec`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${lane.concurrency}`,
      `--test-timeout=${timeoutMs}`,
      '--test-reporter=spec',
      `--test-reporter-destination=${spec}`,
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
      ...lane.files,
    ],
    { stdio: 'inherit', detached: true },
  );
  const run = { ...lane, child, tap, seconds: 0 };
  running.push(run);
  run.ended = new Promise((r) =>
    child.once('exit', (code, signal) => {
      run.seconds = Math.round((Date.now() - started) / 1000);
      if (spec !== 'stdout') {
        process.stdout.write(
          `\n── ${lane.name} lane: ${lane.files.length} file(s), ${lane.concurrency} at a time, ${after ? `after the ${after} lane, ` : ''}beside the serial lane ──\n`,
        );
        process.stdout.write(read(spec));
      }
      r([code, signal]);
    }),
  );
  return run;
}

function read(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Every lane started so far, in the order they started. */
const running = [];
/** Set once the run is being stopped (watchdog, Ctrl-C): no lane starts after that. */
let stopping = false;
const signalGroup = (pid, sig) => {
  try {
    process.kill(-pid, sig);
  } catch {
    /* gone */
  }
};
const signalAll = (sig) => running.forEach((l) => signalGroup(l.child.pid, sig));
let watchdogFired = false;
const watchdog = setTimeout(() => {
  watchdogFired = true;
  stopping = true;
  console.error(
    `\nrun-tests: the run passed its watchdog (TEST_WATCHDOG_MS=${watchdogMs}); stopping every process of it`,
  );
  signalAll('SIGTERM');
  setTimeout(() => signalAll('SIGKILL'), 15_000).unref();
}, watchdogMs);
// Ctrl-C or a stop of this script reaches the runners, which are in other process groups.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopping = true;
    signalAll(sig);
    setTimeout(() => signalAll('SIGKILL'), 15_000).unref();
  });
}

/** Runs a slot's lanes one after the other; none starts once the run is being stopped. */
async function runSlot(slot, first) {
  for (const [k, lane] of slot.entries()) {
    if (stopping) return;
    const run = startLane(lane, { toStdout: first && k === 0, after: slot[k - 1]?.name });
    run.end = await run.ended;
  }
}
await Promise.all(slots.map((slot, i) => runSlot(slot, i === 0)));
clearTimeout(watchdog);

// Whatever is left in a runner's group (a file process still stopping what it started, or what it left
// behind) gets SIGTERM and up to 10 s to end (a file process's handler stops its own children), then SIGKILL.
const groupAlive = (pid) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};
const anyAlive = () => running.some((l) => groupAlive(l.child.pid));
if (anyAlive()) {
  signalAll('SIGTERM');
  for (let i = 0; i < 100 && anyAlive(); i++) await new Promise((r) => setTimeout(r, 100));
  signalAll('SIGKILL');
}

const problems = [];
if (watchdogFired) problems.push(`the run was stopped by its watchdog after ${watchdogMs} ms`);
let total = 0;
let failed = 0;
running.forEach((lane) => {
  const report = read(lane.tap);
  const [code, signal] = lane.end;
  const tests = /^# tests (\d+)$/m.exec(report);
  const what = running.length > 1 ? `the ${lane.name} lane: ` : '';
  if (!tests)
    problems.push(`${what}node's test runner printed no summary (it ended with ${signal ?? `exit code ${code}`})`);
  else if (Number(tests[1]) === 0) problems.push(`${what}node's summary reports 0 tests`);
  total += Number(tests?.[1] ?? 0);
  failed += Number(/^# fail (\d+)$/m.exec(report)?.[1] ?? 0);
  // A file that registered no test shows up as one top-level passing "test" named by its path.
  const paths = new Set(lane.files.map((f) => resolve(f)));
  for (const m of report.matchAll(/^ok \d+ - (.+)$/gm)) {
    if (paths.has(m[1])) problems.push(`${m[1]} ran no test`);
  }
  if (code !== 0) lane.failed = true;
});
rmSync(tmp, { recursive: true, force: true });
if (running.length > 1)
  console.log(
    `run-tests: ${total} tests, ${failed} failed, in ${Math.round((Date.now() - started) / 1000)} s; ` +
      running.map((l) => `${l.name} lane ${l.files.length} files ${l.seconds} s`).join(', '),
  );
for (const p of problems) console.error(`run-tests: ${p}`);
if (problems.length) process.exit(1);
process.exit(running.some((l) => l.failed) ? (running.find((l) => l.failed).end[0] ?? 1) : 0);
