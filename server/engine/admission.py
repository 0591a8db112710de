"""Admission by measured capacity: the open sessions' words on how far behind real time their audio is, and whether
one has stayed far enough behind for long enough that the cores cannot carry another session."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# How long (s) a session's word on its lateness counts: the server says it before every feed, so a session sending
# audio (or with audio still waiting to be decoded) speaks several times a second.
LATENESS_FRESH_S = 2.0
# How long (s) a session must have stayed `bound_ms` behind before new sessions are refused: a blip (a decoder's
# first utterance decoded twice, a moment of another process's) is not a lack of capacity.
LATENESS_SUSTAINED_S = 1.0


@dataclass
class _Word:
    """A session's last word on its lateness, and since when it has been past the bound. `when`: the word, or the
    end of the feed that followed it if later; `feeding`: a feed is on its way (queued behind other sessions' on its
    worker, or decoding), so the word is not stale however long that takes."""

    when: float
    ms: float
    over_since: float | None
    feeding: bool = False


class Lateness:
    """The open sessions' lateness, keyed by session. `bound_ms`: how far behind counts (0: never); `clock`: seconds."""

    def __init__(self, bound_ms: float, clock: Callable[[], float]) -> None:
        if bound_ms < 0:
            raise ValueError("admit_behind_ms must be 0 (off) or more")
        self.bound_ms = bound_ms
        self._clock = clock
        self._words: dict[int, _Word] = {}

    def told(self, sid: int, ms: float) -> None:
        """Session `sid` is `ms` behind real time."""
        now, before = self._clock(), self._words.get(sid)
        if before is not None and not self._fresh(before, now):
            before = None  # it went quiet: a stretch behind starts over
        over_since = None
        if ms >= self.bound_ms:
            over_since = before.over_since if before is not None and before.over_since is not None else now
        self._words[sid] = _Word(now, ms, over_since, feeding=before is not None and before.feeding)

    @contextlib.contextmanager
    def feeding(self, sid: int) -> Iterator[None]:
        """While session `sid`'s feed is on its way its word stays fresh; it counts as said again when the feed ends."""
        word = self._words.get(sid)
        if word is not None:
            word.feeding = True
        try:
            yield
        finally:
            word = self._words.get(sid)  # a word given during the feed replaced the record, and carried the flag
            if word is not None:
                word.feeding = False
                word.when = self._clock()

    def forget(self, sid: int) -> None:
        """Session `sid` closed: its word no longer counts."""
        self._words.pop(sid, None)

    def behind_ms(self) -> float:
        """How far behind real time the furthest-behind session is, of those past `bound_ms` for
        `LATENESS_SUSTAINED_S` by a word still fresh (`LATENESS_FRESH_S`; a session that stopped sending says nothing
        new, and its old word no longer counts); 0 when none is, or when the bound is 0."""
        if not self.bound_ms:
            return 0.0
        now = self._clock()
        return max(
            (
                word.ms
                for word in self._words.values()
                if self._fresh(word, now)
                and word.over_since is not None
                and now - word.over_since >= LATENESS_SUSTAINED_S
            ),
            default=0.0,
        )

    @staticmethod
    def _fresh(word: _Word, now: float) -> bool:
        return word.feeding or now - word.when <= LATENESS_FRESH_S
