"""What the two-pass session's finals have said so far (server/engine/twopass.py): the words a later answer of
Whisper's is checked against (the previous final's words heard again in a window's tail or preroll, the
words given to it again), the words said that a later window may be given (SAID_REACH_MS), and the accurate pass's
prompt. Times are session milliseconds of audio."""

from __future__ import annotations

import dataclasses
import logging

from server.engine.pending import PendingFinal
from server.engine.word_match import (
    TAIL_SLACK_MS,
    context_words,
    given_again,
    leading,
    least_probability,
    near_same,
    paired,
    repeated_head,
    spoken_form,
    spoken_forms,
    without_echoes,
)
from server.transcript import Hypothesis, Word

logger = logging.getLogger(__name__)

# Kept for the accurate pass's prompt: the end of the session's previous finals (Whisper reads at most 223 tokens).
PROMPT_CHARS = 600
# ... but not a final with a word Whisper was less sure of than this: Whisper copies what its prompt says, so one
# misheard word in it is misheard again in every later final ("clubs" heard once as "clothes" at 10 dB SNR, its
# least-sure word at 0.01, came back in each later card at 0.93). Correct finals mostly stay above it. After one
# left out, the jobs that do not reach back into it have no prompt (`Delivered.record`). Measured on the joined
# sessions (bench/README.md, the prompt's doubtful finals; "The prompt after a doubtful final").
PROMPT_MIN_PROBABILITY = 0.5
# Where the fast pass heard no word: from this long after its last word (the tail, which lets Whisper hear that
# word to its end), and in the pause before the next utterance. A word Whisper begins there that repeats the word
# before it is an echo ("five five" at 20 dB SNR came back "5, 5, 5", the third "5" begun 150 ms after the fast
# pass's end of speech; the latest real word in the 184 recorded words at 20 and 10 dB began 10 ms after it).
LATE_START_MS = 100
# The words of the finals kept for a window to be given (SAID_REACH_MS): more than PROMPT_CHARS of text and
# SAID_REACH_MS of speech hold.
SAID_WORDS = 200


class Delivered:
    """The finals delivered so far, as later answers and windows need them."""

    def __init__(self) -> None:
        self.prompt = ""  # the end of the finals delivered so far, for the accurate pass's context
        self.end_ms = 0  # where the last final delivered ends
        self.last: tuple[Word, ...] = ()  # its words
        self.last_tail_ms = 0  # where its window's tail began: the fast pass's last word's end
        self.last_rough = False  # it is the fast pass's text (a fallback)
        # The fast pass's words of the finals' utterances that the finals lack, the newest SAID_WORDS (`given_again`).
        self.unwritten: tuple[Word, ...] = ()
        self.said: list[Word] = []  # the words of the finals since the last that was not all Whisper's

    def forget_said(self) -> None:
        """No later window is given the words said before this point (SAID_REACH_MS)."""
        self.said, self.unwritten = [], ()

    def record(self, fast: Hypothesis, final: Hypothesis) -> bool:
        """`final` went out for the fast pass's utterance `fast`. True when it emptied the prompt (a doubtful final,
        or the fast text)."""
        if final.words:
            self.end_ms = max(self.end_ms, final.end_ms)
            # Not the words carried to the next window (CARRY_MS: they end after the final does, and are that
            # one's), nor one the final before has in its window's tail, taken out of this one as heard there
            # (`repeated_head`; only there: a word Whisper left out of this final stays lacking).
            tail = [w for w in self.last if w.start_ms >= self.last_tail_ms - TAIL_SLACK_MS]
            self.last, self.last_rough = final.words, bool(final.warning)
            written = paired(fast.words, final.words)
            unwritten = [
                w
                for i, w in enumerate(fast.words)
                if i not in written and spoken_form(w) and w.end_ms <= final.end_ms and not near_same(w, tail)
            ]
            # One a later final wrote (Whisper put it in the next window) is no longer lacking.
            earlier = [u for u in self.unwritten if not near_same(u, final.words)]
            self.unwritten = (*earlier, *unwritten)[-SAID_WORDS:]
            self.last_tail_ms = fast.end_ms
            # Kept for SAID_REACH_MS: what Whisper wrote, back to a final that is the fast text in whole or in part
            # (Whisper is never given those words as its own).
            self.said = [*self.said, *final.words][-SAID_WORDS:] if not final.warning else []
            if not self.said:
                self.unwritten = ()
        if final.words and not final.warning and least_probability(final.words) >= PROMPT_MIN_PROBABILITY:
            self.prompt = (self.prompt + " " + final.text)[-PROMPT_CHARS:]
        elif final.words:
            # Whisper reads its prompt as the text just before its audio: with a doubtful final (or the fast pass's
            # text) left out, what came before it is not, and Whisper wrote it again (measured at real time on the
            # held-out recordings: a talk's "this is me talking really slow", the talk's first final left out,
            # came back "What your country can do for your country! This is the talking really slow" from the JFK
            # clip two finals before). The jobs after it start without one, but for one that reaches back into it,
            # which hears its audio again and is prompted with the text before it.
            logger.debug("a doubtful final leaves the prompt empty: %r", final.text)
            self.prompt = ""
            return True
        return False

    def after_previous(self, final: Hypothesis) -> Hypothesis:
        """`final` (Whisper's or the fast pass's) without the words that are the previous final's last ones again
        (`repeated_head`), and moved to begin no earlier than it ends: the previous window's tail can hold this
        utterance's first word, heard again by this window, when the fast pass gave it only after that window went.
        No word is lost: the previous final has those words, in its tail (a word said again across the cut, "there.
        | There it is", is in its own final and stays)."""
        if not final.words:
            return final
        cut = repeated_head(final.words, self.last, self.end_ms, self.last_tail_ms)
        if cut:
            logger.debug("%d words of a final were the previous final's again", cut)
            if not any(spoken_form(w) for w in final.words[cut:]):
                return Hypothesis((), True, final.start_ms, final.end_ms)
        words = self.after_last(final.words[cut:])
        return Hypothesis(words, True, words[0].start_ms, words[-1].end_ms, warning=final.warning)

    def after_last(self, words: tuple[Word, ...]) -> tuple[Word, ...]:
        """`words` moved to begin no earlier than the last final delivered ends: the previous final's tail and this
        one's preroll share the pause between them, and Whisper's alignment may stretch a word into it, while finals
        keep their time order."""
        if words[0].start_ms >= self.end_ms:
            return words
        floor = self.end_ms
        return tuple(
            dataclasses.replace(w, start_ms=max(w.start_ms, floor), end_ms=max(w.end_ms, floor)) for w in words
        )

    def own_words(self, pending: PendingFinal, words: tuple[Word, ...]) -> tuple[Word, ...]:
        """The words of Whisper's answer that are `pending`'s own: not the previous utterance's heard again, nor an
        echo of its last word in a quiet span."""
        fast = pending.fast
        if pending.given:
            # The window heard the words given again: what Whisper writes of them once more, before this window's
            # speech begins, is theirs (the finals before have them), wherever in their audio it aligned it.
            speech_from_ms = min(fast.start_ms, pending.speech_from_ms)
            again = given_again(words, pending.given, speech_from_ms, self.unwritten, own=fast.words)
            if again:
                logger.debug("%d words of an answer were the words given again", again)
            words = words[again:]
        elif pending.keep_from_ms:
            trust = not self.last_rough
            words = words[context_words(words, self.last, pending.keep_from_ms, trust_text=trust) :]
        quiet = [(fast.end_ms + LATE_START_MS, 2**31)]  # the tail: to the end of the job, however aligned
        if pending.keep_from_ms:
            quiet.append((pending.keep_from_ms + LATE_START_MS, fast.start_ms))
        elif pending.filled_from_ms:
            # The filled pause: the previous job heard its start as its tail, so Whisper may write that job's last
            # word again there.
            quiet.append((pending.filled_from_ms, fast.start_ms))
        else:
            # The preroll, before any speech this job is for: Whisper may write its prompt's last word (the previous
            # final's) again there (measured: "One." then "1. From fairest creatures", 1.6 s apart, the sonnet read
            # alone at real time). Only a word that ends before the speech begins: one that runs into it is said.
            quiet.append((pending.start_ms - 1, min(fast.start_ms, pending.speech_from_ms)))
        previous = spoken_forms(self.last)
        last = previous[-1] if previous else ""
        said = spoken_forms(fast.words)
        written = spoken_forms(words)
        if last and 0 < leading(written, [last]) <= leading(said, [last]):
            # The fast pass heard this utterance begin with that word as often as Whisper wrote it there: said
            # again, not an echo, wherever Whisper aligned it ("no | no we can't", the second aligned early into
            # the pause); only the tail's are looked at.
            quiet = quiet[:1]
        return without_echoes(words, quiet, last)
