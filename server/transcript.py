"""Transcript values: the words a recognizer heard and the hypotheses it makes of them.

The bottom of the server's layers: the engine makes these, the protocols write them on the wire and the emulators
script them, so this module imports nothing of the server's own. Times are milliseconds from the start of the
session's audio.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: int
    end_ms: int
    # Written without a space before it (",", ".", "?", "'s"): Truebar's isLeftHanded.
    joins_previous: bool = False
    # Written without a space after it (an opening quote or bracket): Truebar's isRightHanded.
    joins_next: bool = False
    # How sure the recognizer was of the word, 0 to 1 (Whisper's mean probability of its tokens); None when it does
    # not say. The engine's own: no protocol writes it.
    probability: float | None = None


@dataclass(frozen=True)
class Hypothesis:
    """One utterance's words. A partial (is_final False) replaces the previous partial of the same utterance; a
    final commits the utterance and the next hypothesis starts a new one."""

    words: tuple[Word, ...]
    is_final: bool
    start_ms: int
    end_ms: int
    # Set on a final that is not what the session normally delivers (the fast pass's text standing in for the
    # accurate pass's): the stream server sends it to the client as a WARNING before the final.
    warning: str = ""

    @property
    def text(self) -> str:
        """The words as written: a space between two words unless the first joins the next or the second joins
        the previous one (the rule Truebar's tokensToText applies to isRightHanded/isLeftHanded tokens)."""
        out: list[str] = []
        glue = True
        for w in self.words:
            if not w.text:
                continue
            if not glue and not w.joins_previous:
                out.append(" ")
            out.append(w.text)
            glue = w.joins_next
        return "".join(out)
