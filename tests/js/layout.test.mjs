// Rules about where things live in static/: provider names only in providers/, and no module but the entry point
// touches the DOM when it is imported (so the page's logic can be imported, and tested, under Node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const STATIC = fileURLToPath(new URL('../../static/', import.meta.url));

/** @param {string} dir @returns {string[]} */
function modules(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return modules(path);
    return e.name.endsWith('.js') ? [path] : [];
  });
}

test('no code outside static/providers/ names a provider: it asks the capabilities', () => {
  const offenders = [];
  for (const path of modules(STATIC)) {
    const rel = relative(STATIC, path);
    if (rel.startsWith('providers/')) continue;
    const code = readFileSync(path, 'utf8').replace(/^\s*(\/\/|\*|\/\*\*).*$/gm, '');
    for (const name of ['truebar', 'wiro', 'local']) {
      if (new RegExp(`['"\`]${name}['"\`]`).test(code)) offenders.push(`${rel}: '${name}'`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('every module but the entry point and the worklet imports without a DOM', async () => {
  assert.equal(typeof globalThis.document, 'undefined');
  const skip = new Set(['app.js', join('captions', 'main.js'), join('audio', 'pcm-processor.js')]);
  const imported = [];
  for (const path of modules(STATIC)) {
    const rel = relative(STATIC, path);
    if (skip.has(rel)) continue;
    await import(pathToFileURL(path).href);
    imported.push(rel);
  }
  assert.ok(imported.includes(join('page', 'main.js')) && imported.includes(join('page', 'controller.js')));
});

test('Start and the file picker are disabled in the HTML: a click before the page has wired them would do nothing', () => {
  const html = readFileSync(fileURLToPath(new URL('../../templates/index.html', import.meta.url)), 'utf8');
  for (const id of ['start', 'file']) {
    const tag = html.match(new RegExp(`<(?:button|input)[^>]*\\bid="${id}"[^>]*>`));
    assert.ok(tag, id);
    assert.match(tag[0], /\sdisabled[\s>]/, `#${id} starts disabled`);
  }
  // main.js enables them once the engines are known, after every handler is attached.
  const main = readFileSync(join(STATIC, 'page', 'main.js'), 'utf8');
  const wired = main.indexOf("controls.start.addEventListener('click'");
  const enabled = main.indexOf('enableStart()');
  assert.ok(wired > 0 && enabled > wired, 'enabled only after the click handler is attached');
});
