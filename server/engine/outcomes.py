"""What became of each final of the two-pass recognizer: the warnings a final that is the fast pass's text carries,
the reasons /metrics counts them under, and the counts (`TwoPassStats`) and observer (`TwoPassObserver`) that report
them. Kept apart from the session (server/engine/twopass.py) so the stream server, the emulators and /metrics name
the outcomes without the machinery that makes them."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Protocol

FALLBACK_WARNING = "The accurate pass was too slow; this final is the fast pass's text."
BUSY_WARNING = "The accurate pass was too busy; this final is the fast pass's text."
FAILED_WARNING = "The accurate pass failed; this final is the fast pass's text."
UNRELIABLE_WARNING = "The accurate pass repeated itself; this final is the fast pass's text."
EMPTY_WARNING = "The accurate pass heard no words where the fast pass did; this final is the fast pass's text."
# Speech only the loose voice detector heard (server/engine/voice_runs.py) that the accurate pass could not decode
# in time, or at all: no pass has text for it, so the warning stands in for the words.
UNHEARD_WARNING = "Faint speech (whispered or very quiet) was left out: the accurate pass could not decode it."
# Worded like the others so the page marks the final rough (static/page/rough.js), not with a banner.
SKIPPED_WARNING = "The accurate pass skipped part of this utterance; where it did, this final is the fast pass's text."
# The fallback reasons /metrics counts, by the warning the final carries.
REASONS = {
    FALLBACK_WARNING: "slow",
    BUSY_WARNING: "busy",
    FAILED_WARNING: "failed",
    UNRELIABLE_WARNING: "unreliable",
    EMPTY_WARNING: "empty",
    SKIPPED_WARNING: "skipped",  # Whisper's final with the fast text in part: still an accurate final
}
# The warnings a final of the accurate pass's may carry (the others mean the fast pass's text is the final).
ACCURATE_IN_PART = frozenset({SKIPPED_WARNING})


class TwoPassObserver(Protocol):
    """Told of each utterance's latencies as they happen (the app's /metrics)."""

    def first_interim_after(self, seconds: float) -> None:
        """Speech start (when its audio arrived) → the utterance's first interim."""
        ...

    def final_after(self, seconds: float, reason: str, *, accurate: bool) -> None:
        """End of speech → the utterance's final. `reason` names why it is the fast text, wholly or in part ("" when
        it is not at all); `accurate`: the final is the accurate pass's (it waited for it), in part at least."""
        ...

    def decoded_again(self) -> None:
        """A window given the words said before it came back of no use and went again without them."""
        ...

    def unheard(self, outcome: str) -> None:
        """A run of speech only the loose voice detector heard came back from the accurate pass: `outcome` "final"
        (Whisper's words went out), "dropped" (no new speech it was sure of, or a loop) or "lost" (refused, too late
        or failed: UNHEARD_WARNING)."""
        ...


@dataclass
class TwoPassStats:
    """Counted over every session of one recognizer: what the benchmark and the logs report."""

    accurate: int = 0  # finals from the accurate pass
    fallback_slow: int = 0  # fast text as the final: the accurate final came too late
    fallback_busy: int = 0  # fast text as the final: the accurate pass's queue was full
    fallback_failed: int = 0  # fast text as the final: the accurate pass raised
    fallback_unreliable: int = 0  # fast text as the final: the accurate pass looped
    fallback_empty: int = 0  # fast text as the final: the accurate pass heard nothing where the fast pass did
    # Accurate finals with the fast text in part, where the accurate pass skipped a stretch of speech: a sign of
    # noise, not of load, so not among the fallbacks.
    accurate_in_part: int = 0
    # Windows given the words said (SAID_REACH_MS) whose answer was of no use (a loop, or no words where the fast
    # pass heard some), decoded once more without them (`TwoPassSession._retried`).
    retried: int = 0
    # Finals of windows sent while the speaker went on whose last words went to the next window (CARRY_MS).
    carried: int = 0
    # Runs of speech only the loose voice detector heard (UNHEARD_PAD_MS): sent to the accurate pass, made finals
    # (Whisper sure of its words), dropped as no new speech (no words, doubtful ones, a loop, or only the words the
    # final before has in its tail), and left out with UNHEARD_WARNING (refused, late or failed).
    unheard_sent: int = 0
    unheard_finals: int = 0
    unheard_dropped: int = 0
    unheard_lost: int = 0
    # End of speech → accurate final ready (seconds), for the benchmark: the latest few thousand, so a server that
    # runs for months does not grow with every final.
    waits_s: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=4096))

    @property
    def fallbacks(self) -> int:
        return (
            self.fallback_slow
            + self.fallback_busy
            + self.fallback_failed
            + self.fallback_unreliable
            + self.fallback_empty
        )

    def delivered(self, warning: str) -> None:
        """One final of the fast pass's utterances went out, with `warning` (none: all Whisper's). Counted when it
        goes, not when its answer came: one whose every word was the previous final's again does not go."""
        reason = REASONS.get(warning, "")
        if reason in ("", "skipped"):
            self.accurate += 1
        if reason == "skipped":
            self.accurate_in_part += 1
        elif reason == "slow":
            self.fallback_slow += 1
        elif reason == "busy":
            self.fallback_busy += 1
        elif reason == "failed":
            self.fallback_failed += 1
        elif reason == "unreliable":
            self.fallback_unreliable += 1
        elif reason == "empty":
            self.fallback_empty += 1
