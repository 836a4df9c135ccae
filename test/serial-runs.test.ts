// run-tests lane: in-process
/**
 * SerialRuns (src/node/serial-runs.ts), which the host uses to journal the enclave's refs one run at a
 * time: never two runs at once, requests made during a run answered by exactly one more run after it,
 * and a request resolving only once a run that started after it has ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerialRuns } from '../src/node/serial-runs.ts';

test('one run at a time; the requests made during a run share one more run after it', async () => {
  let active = 0;
  let most = 0;
  let runs = 0;
  const gates: Array<() => void> = [];
  const s = new SerialRuns(async () => {
    active += 1;
    most = Math.max(most, active);
    runs += 1;
    await new Promise<void>((r) => gates.push(r));
    active -= 1;
  });
  const first = s.request();
  assert.equal(runs, 1);
  const during = [s.request(), s.request(), s.request()];
  assert.equal(runs, 1, 'no second run while the first is under way');
  gates.shift()!();
  await new Promise((r) => setImmediate(r));
  assert.equal(runs, 2, 'the three requests made meanwhile got one more run');
  let settled = false;
  void Promise.all(during).then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'a request made during the first run waits for the run after it');
  gates.shift()!();
  await Promise.all([first, ...during, s.settled()]);
  assert.equal(runs, 2);
  assert.equal(most, 1, 'never two runs at once');
  const third = s.request();
  assert.equal(runs, 3, 'a request once idle starts a run of its own');
  gates.shift()!();
  await third;
});
