// The browser SDK as an npm package (issue 19): what `npm pack` ships is complete (every module the entry points
// import, the worklet and its DSP, the declarations), nothing else of the repository rides along, and the exports
// map is the only way in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Session as FromSource } from '../../static/session.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/** The files `npm pack` would put in the tarball (dry run: nothing written, no network). */
function packedFiles() {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  return new Set(JSON.parse(out)[0].files.map((f) => f.path));
}

/** Every file reachable by relative static imports from `entry` (repository paths). */
function importGraph(entry) {
  const seen = new Set();
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gm)) {
      todo.push(relative(ROOT, normalize(join(ROOT, dirname(file), m[1]))));
    }
    for (const m of text.matchAll(/^import\s+'(\.[^']+)'/gm)) {
      todo.push(relative(ROOT, normalize(join(ROOT, dirname(file), m[1]))));
    }
  }
  return seen;
}

test('package.json names a versioned, public package with exports and types', () => {
  assert.equal(pkg.private, undefined, 'npm pack/publish must not be refused');
  assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
  assert.equal(pkg.exports['.'].default, './static/session.js');
  assert.equal(pkg.types, pkg.exports['.'].types);
  for (const target of Object.values(pkg.exports)) {
    for (const path of typeof target === 'string' ? [target] : Object.values(target)) {
      assert.ok(existsSync(join(ROOT, path)), `${path} exists`);
    }
  }
});

test('the tarball holds every module the entry points import, the worklet, its DSP and the declarations; nothing else', () => {
  const files = packedFiles();
  const needed = new Set([
    ...importGraph('static/session.js'),
    ...importGraph('static/audio/pcm-processor.js'),
    'static/audio/pcm-processor.js',
    'types/sdk/session.d.ts',
    'types/sdk/grants.d.ts',
    'package.json',
  ]);
  for (const file of needed) assert.ok(files.has(file), `${file} is packed`);
  for (const file of files) {
    assert.ok(/^(static\/|types\/sdk\/|package\.json$|README\.md$)/.test(file), `${file} does not belong in the package`);
    assert.ok(!/^static\/(page|transcripts)\//.test(file) && !file.endsWith('app.js'), `${file}: the page is not the SDK`);
  }
});

test('the package name resolves to the same module (self-reference through exports)', async () => {
  const { Session, appGrants, ApiError, SessionError } = await import('live-stt');
  assert.equal(Session, FromSource);
  assert.equal(typeof appGrants, 'function');
  assert.equal(typeof ApiError, 'function');
  assert.equal(typeof SessionError, 'function');
  const { Resampler } = await import('live-stt/audio/pcm.js');
  assert.equal(typeof Resampler, 'function');
});

test("the tests' window onto private state is not reachable through the package", async () => {
  for (const path of ['live-stt/session-internals', 'live-stt/static/session-internals.js', 'live-stt/static/session.js']) {
    await assert.rejects(import(path), (err) => err.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED', path);
  }
});
