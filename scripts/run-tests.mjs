#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's built-in test runner (through tsx), so the
// closing summary is node's standard one. Files run one at a time by default: most of them start
// real processes, chains and sockets, and the machine has two cores.
//
// A run cannot hang and cannot pass by running nothing:
// - each file has a timeout, TEST_TIMEOUT_MS (default 15 min, far above the slowest file): node 20's
//   --test-timeout applies to each file as a whole, and a file that passes it is stopped and reported failed;
// - the whole run has a watchdog, TEST_WATCHDOG_MS (default 60 min): past it every process of the run is
//   stopped (SIGTERM, then SIGKILL) and the run fails;
// - a filter that matches no file, a summary that reports no test, or a file that registered no test fails.
// TEST_DIR (default test) is where the files are looked for; directories named fixtures are skipped.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';

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

function ms(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`run-tests: ${name} must be a positive whole number of milliseconds (got ${JSON.stringify(v)})`);
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
const timeoutMs = ms('TEST_TIMEOUT_MS', 15 * 60_000);
const watchdogMs = ms('TEST_WATCHDOG_MS', 60 * 60_000);
const concurrency = process.env.TEST_CONCURRENCY ?? '1';
// The spec reporter for people, a TAP copy to read the summary from.
const tmp = mkdtempSync(join(tmpdir(), 'run-tests-'));
const tap = join(tmp, 'run.tap');
// Its own process group, so the watchdog reaches every file process and what they started.
const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${timeoutMs}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  { stdio: 'inherit', detached: true },
);

const signalGroup = (sig) => {
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* gone */
  }
};
let watchdogFired = false;
const watchdog = setTimeout(() => {
  watchdogFired = true;
  console.error(
    `\nrun-tests: the run passed its watchdog (TEST_WATCHDOG_MS=${watchdogMs}); stopping every process of it`,
  );
  signalGroup('SIGTERM');
  setTimeout(() => signalGroup('SIGKILL'), 15_000).unref();
}, watchdogMs);
// Ctrl-C or a stop of this script reaches the runner, which is in another process group.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    signalGroup(sig);
    setTimeout(() => signalGroup('SIGKILL'), 15_000).unref();
  });
}

const [code, signal] = await new Promise((r) => child.once('exit', (c, s) => r([c, s])));
clearTimeout(watchdog);
// Whatever is left in the runner's group (a file process still stopping what it started, or what it left
// behind) gets SIGTERM and up to 10 s to end (a file process's handler stops its own children), then SIGKILL.
const groupAlive = () => {
  try {
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
};
if (groupAlive()) {
  signalGroup('SIGTERM');
  for (let i = 0; i < 100 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 100));
  signalGroup('SIGKILL');
}
const report = (() => {
  try {
    return readFileSync(tap, 'utf8');
  } catch {
    return '';
  }
})();
rmSync(tmp, { recursive: true, force: true });

const problems = [];
if (watchdogFired) problems.push(`the run was stopped by its watchdog after ${watchdogMs} ms`);
const tests = /^# tests (\d+)$/m.exec(report);
if (!tests) problems.push(`node's test runner printed no summary (it ended with ${signal ?? `exit code ${code}`})`);
else if (Number(tests[1]) === 0) problems.push("node's summary reports 0 tests");
// A file that registered no test shows up as one top-level passing "test" named by its path.
const paths = new Set(files.map((f) => resolve(f)));
for (const m of report.matchAll(/^ok \d+ - (.+)$/gm)) {
  if (paths.has(m[1])) problems.push(`${m[1]} ran no test`);
}
for (const p of problems) console.error(`run-tests: ${p}`);
if (problems.length) process.exit(1);
process.exit(code ?? 1);
