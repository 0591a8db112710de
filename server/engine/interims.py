"""What the two-pass session's interims show (server/engine/twopass.py): the fast pass's partial of the utterance in
progress held steady (`SteadyPartial`), and the screen the interims draw, so an update goes out only when it changes
what the client shows (`Screen`). Times are session milliseconds of audio fed, never the clock: a change shows after
so much audio, however fast the client sends it."""

from __future__ import annotations

from collections.abc import Sequence

from server.transcript import Hypothesis, Word


class SteadyPartial:
    """The fast pass's partial of the utterance in progress: new words show at once, but a word already on screen
    changes (or goes) only once the fast pass has held the change over `SETTLE_MS` of audio. pocketsphinx flips its
    newest words back and forth as audio comes (measured: about 13 of 20 interim updates rewrote a word already
    shown), most of all where the audio stops mid-word; the final corrects what stays wrong, so the screen keeps
    still instead."""

    # Its decoder reads each frame as it arrives (server/engine/sphinx.py `_Stream._frame`), so new words come a
    # window sooner; the newest audio, a word cut off mid-way above all, is where its hypothesis flips most.
    SETTLE_MS = 120

    def __init__(self) -> None:
        self.raw: Hypothesis | None = None  # the fast pass's latest partial, as it came
        self.shown: Hypothesis | None = None  # the same held steady: what the interims show of it
        # The raw partial's words (None past its end, where words were shown) and since when (ms fed) each position
        # has said what it says.
        self._texts: list[str | None] = []
        self._since: list[float] = []

    def update(self, partial: Hypothesis, fed_ms: float) -> None:
        """The fast pass sent `partial` once `fed_ms` of audio had been fed."""
        self.raw = partial
        self.shown = self._steady(partial, fed_ms)

    def settle(self, fed_ms: float) -> bool:
        """Show a change the fast pass has held SETTLE_MS though no partial came since: pocketsphinx sends one only
        when its text changes, and a change held at the end of a stretch of speech would otherwise wait for the
        endpoint. True if what shows changed."""
        if self.raw is None or self.shown is None:
            return False
        steady = self._steady(self.raw, fed_ms)
        if [w.text for w in steady.words] == [w.text for w in self.shown.words]:
            return False
        self.shown = steady
        return True

    def end(self) -> None:
        """The utterance ended (the fast pass sent its final): the next partial is a new one's."""
        self.raw = self.shown = None
        self._texts, self._since = [], []

    def _steady(self, partial: Hypothesis, now: float) -> Hypothesis:
        shown = self.shown.words if self.shown is not None else ()
        raw: list[str | None] = [w.text for w in partial.words]
        raw += [None] * (len(shown) - len(raw))  # None: the fast pass no longer has a word there
        since = [
            self._since[i] if i < len(self._texts) and self._texts[i] == text else now for i, text in enumerate(raw)
        ]
        self._texts, self._since = raw, since
        words: list[Word] = []
        for i, word in enumerate(partial.words):
            changed = i < len(shown) and shown[i].text != word.text
            words.append(shown[i] if changed and now - since[i] < self.SETTLE_MS else word)
        for i in range(len(partial.words), len(shown)):
            if now - since[i] >= self.SETTLE_MS:
                break
            words.append(shown[i])  # a word the fast pass dropped only just now
        steady = tuple(words)
        end = max(partial.end_ms, steady[-1].end_ms) if steady else partial.end_ms
        return Hypothesis(steady, False, partial.start_ms, end)


class Screen:
    """The interim on the client's screen: an update goes out only when its words differ from what shows, and an
    empty one only to clear words shown."""

    def __init__(self) -> None:
        self._shown = False  # an interim with words is on the client's screen
        self._texts: tuple[str, ...] = ()  # its words

    def show(self, parts: Sequence[Hypothesis], clear_span: tuple[int, int]) -> list[Hypothesis]:
        """The interim that shows `parts` one after another, if the screen does not show it already; an empty one
        spanning `clear_span` when `parts` have no words and the screen has some."""
        words = tuple(w for part in parts for w in part.words)
        if not words:
            if not self._shown:
                return []
            self._shown = False
            return [Hypothesis((), False, *clear_span)]
        texts = tuple(w.text for w in words)
        if self._shown and texts == self._texts:
            return []  # the screen already says this
        self._shown, self._texts = True, texts
        return [Hypothesis(words, False, parts[0].start_ms, parts[-1].end_ms)]

    def replaced(self) -> None:
        """A final replaced the interim on the client's screen."""
        self._shown = False
