// Another team's page using the SDK as a stranger would: its own grant endpoint, its own AudioContext (made in the
// click, as Safari requires), the worklet URL given explicitly (where this page serves the package's file), and
// listeners by event type.
import { Session } from 'live-stt';

const WORKLET_URL = '/vendor/live-stt/static/audio/pcm-processor.js';
const $ = (id) => document.getElementById(id);

let session = null;
let audioContext = null;

async function getGrant({ provider, tag }, { signal }) {
  const response = await fetch('/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ provider, tag }), signal,
  });
  // The status rides on the error: the session retries a 5xx on a reconnect, and gives up on a 4xx.
  if (!response.ok) throw Object.assign(new Error(`The token endpoint answered ${response.status}.`), { status: response.status });
  return response.json();
}

function endGrant(grant, { beacon }) {
  const body = JSON.stringify({ provider: grant.provider, session_id: grant.session_id });
  if (beacon) navigator.sendBeacon('/token/end', new Blob([body], { type: 'application/json' }));
  // Ending is best effort (the grant expires anyway): a backend that is down must not be an unhandled rejection.
  else fetch('/token/end', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body, keepalive: true }).catch(() => {});
}

function showState(state) {
  $('state').textContent = state;
  $('state').dataset.state = state;
}

$('start').addEventListener('click', async () => {
  $('start').setAttribute('disabled', '');
  $('error').hidden = true;
  audioContext = new AudioContext();
  await audioContext.resume();
  session = new Session({ provider: 'local', getGrant, endGrant, audioContext, workletUrl: WORKLET_URL });
  session.on('state', ({ to, detail }) => {
    showState(to);
    if (to === 'error') {
      $('error').textContent = `${detail.message} (${detail.code ?? 'no code'})`;
      $('error').hidden = false;
    }
  });
  session.on('partial', (e) => { $('interim').textContent = e.text; });
  session.on('final', (e) => {
    $('interim').textContent = '';
    if (!e.text) return;
    const p = document.createElement('p');
    p.className = 'final';
    p.textContent = e.text;
    $('transcript').append(p);
  });
  try {
    await session.start();
    $('stop').removeAttribute('disabled');
  } catch {
    // The next click makes a context of its own: this one would otherwise run on, one more per failed start.
    audioContext.close().catch(() => {});
    audioContext = null;
    $('start').removeAttribute('disabled'); // the state listener has shown why
  }
});

$('stop').addEventListener('click', async () => {
  $('stop').setAttribute('disabled', '');
  if (session) await session.stop();
  if (audioContext) await audioContext.close(); // the page's own context: the session never closes it
  $('start').removeAttribute('disabled');
});

addEventListener('pagehide', () => { if (session) session.endGrant({ beacon: true }); });
