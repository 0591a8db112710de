// Pure parts of static/page/view.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { providerLine } from '../../static/page/view.js';

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
