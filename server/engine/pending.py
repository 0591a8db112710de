"""A final the two-pass session owes (server/engine/twopass.py): the fast pass's utterance, the accurate pass's job
for it and what that job heard, until the final goes out. Times are session milliseconds; `speech_end` and
`deadline` are clock seconds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from server.transcript import Hypothesis, Word


@dataclass(frozen=True)
class PlainWindow:
    """A window as it goes without the words said before it (SAID_REACH_MS): from `start_ms` to `end_ms`, after
    `prompt`, keeping the words from `keep_from_ms` (0: all)."""

    start_ms: int
    end_ms: int
    prompt: str
    keep_from_ms: int


@dataclass
class PendingFinal:
    fast: Hypothesis  # the fast pass's final: the stand-in, and the utterance's span
    future: asyncio.Future[tuple[Word, ...]] | None  # None: not submitted (queue full)
    speech_end: float  # clock time of the end of speech
    deadline: float
    error: str = ""
    keep_from_ms: int = 0  # words the accurate pass heard before this (the previous utterance's) are not this one's
    filled_from_ms: int = 0  # the job heard the pause from here (`fill_gap_ms`), where the fast pass heard no word
    # The words said that it heard again, given to Whisper as its answer's head (`prefix`): what Whisper writes of
    # them once more is taken out (`given_again`).
    given: tuple[Word, ...] = ()
    start_ms: int = 0  # where the job's audio begins
    speech_from_ms: int = 0  # where the speech it is for begins (the fast pass's first word, or the detector's)
    plain: PlainWindow | None = None  # a prefixed job: its window without the words said, to decode if its answer fails
    going_on: bool = False  # sent while the detector heard the speaker go on: its last words may go to the next
    unheard: bool = False  # speech only the loose voice detector heard: `fast` has no words (UNHEARD_PAD_MS)
    binds: bool = True  # its deadline holds the finals before it to theirs (`_pending_deadline`)
