// Pure parts of static/page/view.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createView, providerLine } from '../../static/page/view.js';
import { fakeDocument } from './support/page-fakes.mjs';

test('the engine list says each thing once', () => {
  // The server's own wording (server/providers/truebar.py, wiro.py): the detail restates the variables.
  assert.equal(
    providerLine({ configured: false, missing: ['TRUEBAR_USERNAME', 'TRUEBAR_PASSWORD'], detail: 'Set TRUEBAR_USERNAME and TRUEBAR_PASSWORD on the server.' }),
    'not configured: set TRUEBAR_USERNAME and TRUEBAR_PASSWORD on the server',
  );
  assert.equal(
    providerLine({ configured: false, missing: ['WIRO_API_KEY'], detail: 'set WIRO_API_KEY to use Wiro' }),
    'not configured: set WIRO_API_KEY on the server',
  );
  // A detail that adds something is kept.
  assert.equal(
    providerLine({ configured: false, missing: ['A', 'B', 'C'], detail: 'Needs a paid plan.' }),
    'not configured: set A, B and C on the server (Needs a paid plan)',
  );
  assert.equal(providerLine({ configured: false, missing: [] }), 'not configured');
  assert.equal(providerLine({ configured: true, missing: [], offline: true }), 'ready, runs on this machine');
  assert.equal(providerLine({ configured: true, missing: [], detail: 'Streams to x.' }), 'ready');
});

test('the state line is read out once as a state is entered, not again with each second of its count', () => {
  const doc = fakeDocument();
  doc.getElementById('transcript').ownerDocument = doc;
  const controls = /** @type {any} */ (new Proxy({}, { get: (_, name) => (name === 'exports' ? [] : doc.getElementById(String(name))) }));
  const view = createView(/** @type {any} */ (doc), controls);
  const said = [];
  const show = (state, detail) => {
    view.showState(state, detail);
    const text = doc.getElementById('state-announce').textContent;
    if (said.at(-1) !== text) said.push(text);
  };
  show('starting');
  for (let s = 2; s <= 7; s++) show('starting', `opening the microphone, ${s} s`);
  for (let s = 8; s <= 12; s++) show('starting', `opening the microphone, ${s} s: answer the browser's prompt, or Cancel`);
  show('streaming', 'Truebar');
  for (let s = 0; s <= 20; s++) show('finishing', `waiting for the last words from Truebar (${s} s, at most 30 s)`);
  show('idle');
  // Each state as entered, and what a state says when it changes (the prompt's hint), never its count alone.
  assert.equal(said.length, 6, said.join(' | '));
  assert.match(said[2], /answer the browser's prompt/);
  assert.match(said[4], /^Finishing… — waiting for the last words from Truebar \(0 s/);
  assert.equal(doc.getElementById('state-text').textContent, 'Idle');
});

test('the keyboard focus moves to Stop when Start is disabled under it, and back to Start when the run ends', () => {
  const doc = fakeDocument();
  doc.getElementById('transcript').ownerDocument = doc;
  doc.body = doc.getElementById('body');
  const controls = /** @type {any} */ (new Proxy({}, { get: (_, name) => (name === 'exports' ? [] : doc.getElementById(String(name))) }));
  for (const id of ['start', 'stop', 'cancel', 'provider', 'state', 'transcript-search']) {
    doc.getElementById(id).focus = function focus() { doc.activeElement = this; };
  }
  const view = createView(/** @type {any} */ (doc), controls);
  doc.activeElement = doc.getElementById('start');
  view.setRunning(true);
  assert.equal(doc.activeElement.id, 'stop');
  view.setRunning(false);
  assert.equal(doc.activeElement.id, 'start');
  // Focus elsewhere (a field the run does not disable) is left alone.
  doc.activeElement = doc.getElementById('transcript-search');
  view.setRunning(true);
  view.setRunning(false);
  assert.equal(doc.activeElement.id, 'transcript-search');
  // A setting disabled under the focus (the engine list) hands it to Stop too.
  doc.activeElement = doc.getElementById('provider');
  view.setRunning(true);
  assert.equal(doc.activeElement.id, 'stop');
  // Stop put the focus on the state line (page/main.js): the run's end gives it to Start.
  doc.activeElement = doc.getElementById('state');
  view.setRunning(false);
  assert.equal(doc.activeElement.id, 'start');
  // A run that ends by itself leaves a reader's focus where it was, on the page too.
  view.setRunning(true);
  doc.activeElement = doc.body;
  view.setRunning(false);
  assert.equal(doc.activeElement, doc.body);
});
