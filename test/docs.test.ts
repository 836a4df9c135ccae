// run-tests lane: in-process
/**
 * The documents stay true to the tree: docs/api.md's reference is what scripts/gen-api-doc.ts makes of the
 * route table now; every relative link (and its #anchor) leads somewhere; every command, script and repository
 * path a document names exists; the README stays a short entry point; and no document speaks of how the
 * project was written or prints a path of one particular machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_DOC_PATH, withFreshReference } from '../scripts/gen-api-doc.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const README_MAX_LINES = 250;

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return markdownFiles(p);
    return name.endsWith('.md') ? [p] : [];
  });
}

const DOCS = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))];
const rel = (p: string) => relative(ROOT, p);
const text = new Map(DOCS.map((p) => [p, readFileSync(p, 'utf8')]));

/** The text outside fenced code blocks: links and headings in examples are not links and headings. */
function prose(md: string): string {
  return md.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(md).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

test('docs/api.md is what scripts/gen-api-doc.ts generates from the route table', () => {
  const current = readFileSync(API_DOC_PATH, 'utf8');
  assert.ok(
    withFreshReference(current) === current,
    'docs/api.md is stale: run `npx tsx scripts/gen-api-doc.ts` and commit the result',
  );
});

test(`README.md is at most ${README_MAX_LINES} lines`, () => {
  const lines = text.get(join(ROOT, 'README.md'))!.split('\n').length;
  assert.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines: move detail into docs/`);
});

test('every relative link in README.md and docs/ points to an existing file and heading', () => {
  const broken: string[] = [];
  for (const [file, md] of text) {
    for (const m of prose(md).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
      if (!existsSync(dest)) {
        broken.push(`${rel(file)}: ${target} (no such file)`);
        continue;
      }
      if (
        anchor !== undefined &&
        dest.endsWith('.md') &&
        !anchors(text.get(dest) ?? readFileSync(dest, 'utf8')).has(anchor)
      )
        broken.push(`${rel(file)}: ${target} (no such heading in ${rel(dest)})`);
    }
  }
  assert.deepEqual(broken, []);
});

test('every npm script, script file and repository path the documents name exists', () => {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  const missing: string[] = [];
  for (const [file, md] of text) {
    for (const m of md.matchAll(/\bnpm (start|test)\b|\bnpm run ([\w:.-]+)/g)) {
      const name = m[1] ?? m[2]!;
      if (!(name in scripts)) missing.push(`${rel(file)}: npm ${m[1] ? name : `run ${name}`} (not in package.json)`);
    }
    // Paths in code spans or commands that start at a top-level folder of the repository, e.g.
    // `src/enclave/treasury/` or `npx tsx scripts/bench.ts`; placeholders (DIR, NAME, <…>, …, globs) are skipped.
    for (const m of md.matchAll(
      /(?<![\w./-])((?:src|test|enclave-sim|scripts|dashboard|docs|bin|docs-assets)\/[\w./-]*)(?=[`\s),:;]|$)/gm,
    )) {
      const path = m[1]!.replace(/[.,:;]+$/, '');
      if (/[*<>{}…]|\b(DIR|NAME|FILE)\b/.test(path)) continue;
      if (!existsSync(join(ROOT, path))) missing.push(`${rel(file)}: ${path}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('docs/testing.md says what every test file proves', () => {
  const cells = [...text.get(join(ROOT, 'docs', 'testing.md'))!.matchAll(/^\| ([^|]*`[^|]*) \|/gm)].map((m) => m[1]!);
  const covered = (suite: string) => {
    const [family] = suite.split('.');
    return cells.some(
      (cell) =>
        cell.includes(`\`${suite}\``) ||
        cell.includes(`\`${family}.*\``) ||
        (cell.includes(`\`${family}.`) && cell.includes(`\`${suite.slice(family!.length)}\``)),
    );
  };
  const suites = readdirSync(join(ROOT, 'test'))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -'.test.ts'.length));
  assert.deepEqual(
    suites.filter((s) => !covered(s)),
    [],
    'add a row for each of these suites to the table in docs/testing.md',
  );
});

test('every `npx teechain` command the documents show is one the CLI has', () => {
  const cli = readFileSync(join(ROOT, 'src', 'cli', 'main.ts'), 'utf8');
  const commands = new Set([
    'network',
    'dashboard',
    'node',
    ...[...cli.matchAll(/case '([a-z-]+)':/g)].map((m) => m[1]!),
  ]);
  const flags = new Set(['--json', '--help', '--fresh', '--no-dashboard']); // options that take no value
  const unknown: string[] = [];
  for (const [file, md] of text) {
    for (const m of md.matchAll(/npx teechain((?: [^\s`|)]+)+)/g)) {
      const words = m[1]!.trim().split(' ');
      let i = 0;
      while (words[i]?.startsWith('--')) i += flags.has(words[i]!) ? 1 : 2;
      const cmd = words[i];
      if (cmd !== undefined && !commands.has(cmd)) unknown.push(`${rel(file)}: npx teechain${m[1]}`);
    }
  }
  assert.deepEqual(unknown, []);
});

/** Phrases about how the project was made, or paths of one machine, that have no place in its documents. */
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bthis session\b|\bsessions? of (?:work|the project)\b/i, 'a work session'],
  [/\banother developer\b|\bother developers'? tests\b/i, 'who else used the machine'],
  [/\bthis (?:machine|VM|computer|box)\b|\bon my (?:machine|laptop)\b/i, "the writer's machine as the reader's"],
  [/\b(?:coding )?(?:agents?|helpers?) (?:session|wrote|made|did)\b|\bClaude\b|\bLLM\b/i, 'how the text was written'],
  [/(?:^|[\s`'"(=])\/(?:work|tmp|home|Users|root|var\/folders)\//m, 'an absolute path of one machine'],
];

test('no document speaks of how it was written or prints a path of one particular machine', () => {
  const found: string[] = [];
  for (const [file, md] of text) {
    md.split('\n').forEach((line, i) => {
      for (const [re, what] of FORBIDDEN)
        if (re.test(line)) found.push(`${rel(file)}:${i + 1}: ${what}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});
