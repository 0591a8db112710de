// An adopting page's code, type-checked against the emitted declarations (make test: tsc -p tsconfig.consumer.json).
// Each @ts-expect-error is a check that must fail to compile: if the API stopped refusing it, tsc reports the
// directive as unused and the test fails.
import { Session, SessionError, appGrants, type SessionEvent } from 'live-stt';
import type { Grant, GrantRequest } from 'live-stt/grants';
import { Resampler } from 'live-stt/audio/pcm.js';

const abort = new AbortController();
const session = new Session({
  provider: 'local',
  getGrant: async (request: GrantRequest, { signal }): Promise<Grant> => {
    const response = await fetch('/token', { method: 'POST', body: JSON.stringify(request), signal });
    return (await response.json()) as Grant;
  },
  endGrant: (grant, { beacon }) => { void grant.provider; void beacon; },
  workletUrl: '/vendor/pcm-processor.js',
  signal: abort.signal,
});

const off = session.on('final', (e) => {
  const text: string = e.text;
  const at: number = e.atMs;
  void text; void at;
});
off();
session.on('state', ({ from, to, detail }) => { void from; void to; void detail.code; });
session.on('error', (e) => {
  const code: 'transport' | 'protocol' | 'expired' | 'reconnect_failed' | 'stop_timeout' = e.code;
  void code;
});
session.on('source', (e) => { if (e.code === 'device_switched') void e.message; });
session.on('level', (l) => { void l.rms; });
session.on('event', (e: SessionEvent) => { void e.type; });

// @ts-expect-error: no such event type
session.on('finals', () => {});
// @ts-expect-error: a final has no `code`
session.on('final', (e) => e.code);
// @ts-expect-error: the grant (and its token) is private
void session.grant;
// @ts-expect-error: so is the replay buffer
void session.buffer;
// @ts-expect-error: the state is read-only
session.state = 'idle';

void session.start().catch((err: unknown) => { if (err instanceof SessionError) void err.code; });
void session.stop();
session.cancel();
void appGrants('https://stt.example').getGrant;
void new Resampler(48000, 16000).process(new Float32Array(128));
