/**
 * A long adversarial run (the suite runs a bounded one): `npm run adversary -- [--steps N] [--seed S] [--runs R]`.
 * Each run is the seeded randomised hostile host of test/helpers/adversary-run.ts; a failure prints the
 * seed that replays it (ADVERSARY_SEED=S ADVERSARY_STEPS=N npm test -- adversary).
 * With `--committee`, the run is test/helpers/committee-adversary-run.ts instead: one compromised member of
 * a 2-of-3 committee (replay: COMMITTEE_ADVERSARY_SEED=S COMMITTEE_ADVERSARY_STEPS=N npm test -- committee.adversary).
 */
import { parseArgs } from 'node:util';
import { runRandomised } from '../test/helpers/adversary-run.ts';
import { runCommitteeRandomised } from '../test/helpers/committee-adversary-run.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string' },
    seed: { type: 'string' },
    runs: { type: 'string' },
    committee: { type: 'boolean' },
  },
});
const steps = Number(values.steps ?? 20_000);
const runs = Number(values.runs ?? 1);
if (!Number.isSafeInteger(steps) || steps < 1 || !Number.isSafeInteger(runs) || runs < 1) {
  process.stderr.write('adversary: --steps and --runs must be positive integers\n');
  process.exit(2);
}
let seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
for (let r = 0; r < runs; r++, seed++) {
  const started = Date.now();
  process.stdout.write(`run ${r + 1}/${runs}: seed ${seed}, ${steps} steps\n`);
  try {
    const log = (line: string) => process.stdout.write(`  ${line}\n`);
    const report = values.committee
      ? await runCommitteeRandomised({ seed, steps, log })
      : await runRandomised({ seed, steps, log });
    process.stdout.write(`  ok in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(report)}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
