/**
 * The page is built with Vite when the dashboard starts, not at install time and never committed:
 * `npm install` then `npm start` works with no extra step, and no build output lives in git. The build
 * goes to dist/dashboard/<hash>/ (gitignored), where <hash> covers the page's sources and the versions of
 * the tools and libraries that go into it, so it runs once per change (about two seconds) and every
 * later start reuses it. A build is written to a temporary folder and renamed into place, so two
 * processes starting at once cannot serve a half-written one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const DASHBOARD_SRC = join(ROOT, 'dashboard');
export const DASHBOARD_DIST = join(ROOT, 'dist', 'dashboard');
/** Server-side files the page imports (types only, but a change must rebuild). */
const SHARED = [join(ROOT, 'src/dashboard/protocol.ts')];
/** Packages whose version changes the bundle. */
const TOOLS = ['vite', 'uplot'];

export interface BuiltDashboard {
  dir: string;
  /** False when an earlier build of the same sources was reused. */
  built: boolean;
}

/** The folder holding the built page (index.html and assets/), building it first if needed. */
export async function ensureDashboardBuilt(): Promise<BuiltDashboard> {
  const hash = await sourceHash();
  const dir = join(DASHBOARD_DIST, hash);
  if (await exists(join(dir, 'index.html'))) return { dir, built: false };
  const tmp = join(DASHBOARD_DIST, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const { build } = await import('vite');
  try {
    await build({
      root: DASHBOARD_SRC,
      configFile: false,
      base: './',
      logLevel: 'warn',
      clearScreen: false,
      build: { outDir: tmp, emptyOutDir: true, reportCompressedSize: false, chunkSizeWarningLimit: 400 },
    });
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another process finished the same build first: use theirs.
      if (!(await exists(join(dir, 'index.html')))) throw err;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await removeOldBuilds(hash);
  return { dir, built: true };
}

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  const files = [...(await listFiles(DASHBOARD_SRC)), ...SHARED];
  for (const f of files) {
    h.update(relative(ROOT, f))
      .update('\0')
      .update(await readFile(f))
      .update('\0');
  }
  for (const t of TOOLS) {
    const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', t, 'package.json'), 'utf8')) as {
      version: string;
    };
    h.update(`${t}@${pkg.version}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else out.push(p);
  }
  return out;
}

/**
 * Tidying only: an old build left behind (folder missing, removed by a concurrent build, busy) costs disk
 * space and nothing else, since the page is served from `keep` alone; so failures here are ignored.
 */
async function removeOldBuilds(keep: string): Promise<void> {
  for (const name of await readdir(DASHBOARD_DIST).catch(() => [] as string[])) {
    if (name !== keep && !name.startsWith('.tmp-'))
      await rm(join(DASHBOARD_DIST, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
