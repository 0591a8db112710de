"""What the saved-transcripts browser tests share, whichever way they drive the browser (Playwright for Chromium and
Firefox, WebDriver for WebKit): the page's export formats, a recorder for the files the page hands the browser, a
direct read of the page's IndexedDB, and how an export is compared."""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("txt", "srt", "vtt", "json")
DB_NAME = "live-stt-transcripts"

# Records what the page hands the browser's downloads (its Blob and file name), for browsers whose automation does
# not report downloads (Firefox over WebDriver BiDi, WebKit over WebDriver). It patches at call time, so it works as
# an init script or put in after the load. With window.__downloadsStayInPage set, the browser is not handed the file.
RECORD_DOWNLOADS_SCRIPT = """
window.__downloads = [];
const blobs = new Map();
const createObjectURL = URL.createObjectURL;
URL.createObjectURL = (obj) => { const url = createObjectURL(obj); blobs.set(url, obj); return url; };
const click = HTMLAnchorElement.prototype.click;
HTMLAnchorElement.prototype.click = function () {
  if (this.hasAttribute('download')) {
    window.__downloads.push({ blob: blobs.get(this.href), name: this.download });
    if (window.__downloadsStayInPage) return undefined;
  }
  return click.call(this);
};
"""

# What the database holds, read with plain IndexedDB beside the page's own connection.
STORED_JS = f"""
async () => {{
  const db = await new Promise((resolve, reject) => {{
    const r = indexedDB.open('{DB_NAME}');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  }});
  const tx = db.transaction(['sessions', 'finals']);
  const all = (name) => new Promise((resolve) => {{
    const r = tx.objectStore(name).getAll();
    r.onsuccess = () => resolve(r.result);
  }});
  const sessions = await all('sessions');
  const finals = await all('finals');
  db.close();
  return {{
    sessions: sessions.map((s) => ({{
      id: s.id, state: s.state, title: s.title, finalCount: s.finalCount, pending: s.pending ?? null,
    }})),
    finals: finals.map((f) => ({{ sessionId: f.sessionId, seq: f.seq, text: f.text, rough: f.rough === true }})),
  }};
}}
"""


def comparable_export(fmt: str, text: str) -> str:
    """An export as it must be equal across two exports of one session: the JSON's export time is the one field that
    must differ (it is checked present, then dropped)."""
    if fmt != "json":
        return text
    doc = json.loads(text)
    assert doc["meta"].pop("exportedAt")
    return json.dumps(doc, sort_keys=True)


def limit_said(sessions: int) -> str:
    """What the history's status line says once the session limit is `sessions`."""
    return f"at most {sessions} transcript{'' if sessions == 1 else 's'} "


def words_of(texts: list[str]) -> list[str]:
    """The words of `texts`, lower case, without the stops and commas a rough line's tidying adds."""
    return [w.strip(".,!?").lower() for t in texts for w in t.split()]


def check_restored(restored: list[str], rough: list[str], db: dict[str, Any]) -> None:
    """A transcript restored after a reload mid-recording (`restored`: every final line's text; `rough`: the rough
    ones'; `db`: STORED_JS's answer, one session): the finals as stored, then the words that were still an interim
    at the reload (if any), as one rough line. A stored final can be rough too (the engine's fallback: CI once had
    the busy engine give the fast pass's text), so the unfinished line is told apart by place, not by its mark."""
    kept = sorted(db["finals"], key=lambda f: f["seq"])
    unfinished = restored[len(kept) :]
    pending = db["sessions"][0]["pending"]
    assert len(unfinished) <= 1 and bool(unfinished) == bool(pending), db["sessions"]
    # ... and it holds the stored words (tidied as a rough line: a capital, a stop).
    assert words_of(unfinished) == words_of([pending["text"]] if pending else []), (unfinished, pending)
    assert [f["text"] for f in kept] + unfinished == restored, db
    assert rough == [f["text"] for f in kept if f["rough"]] + unfinished, (rough, db)
