"""The accurate pass: Whisper (CTranslate2, through faster-whisper's model wrapper) over one utterance at a time.

One model instance serves every session, one job at a time with `threads` cores inside CTranslate2; where it runs
and which jobs it takes is server/engine/accurate.py's.

Why not faster-whisper's `transcribe`: it always pads the audio to Whisper's 30 s window, and the encoder's cost is
proportional to the window, so a 3 s utterance paid for 30 s (measured here: 0.54 s to encode 30 s, 0.09 s for 10 s,
the same text). CTranslate2's Whisper accepts shorter windows, so the window is the utterance plus padding, at
least `min_window_s`: too tight a window (the utterance alone) makes Whisper repeat itself. Words and their times
come from the same cross-attention alignment faster-whisper uses for `word_timestamps`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.engine.types import SAMPLE_RATE
from server.transcript import Word

WINDOW_S = 30.0  # Whisper's encoder window: the longest audio one pass can see
# Written with no space after them: an opening quote or bracket Whisper puts before a word.
SENTENCE_END = frozenset({".", "!", "?", "...", "…"})
PAUSE_MARKS = frozenset({",", ";", ":"})  # marks that only make sense before a following word
OPENING = frozenset({'"', "(", "[", "{", "\u201c", "\u2018", "\u00bf", "\u00a1"})  # curly quotes, ¿ ¡
# Whisper's own answer for "nothing was said": these probabilities over its no-speech token, unless the text is
# likely enough anyway (the thresholds faster-whisper and OpenAI's decoder use).
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
LONG_GROUP_TOKENS = 5  # a group of tokens this long written twice over is a loop (shorter ones: four times)
TOKENS_PER_SECOND = 8  # a generous bound on what speech needs: it caps runaway repetition, not real text


class AccurateBusy(Exception):
    """The accurate pass's queue is full: the caller should use what it has instead of waiting."""


class TooLate(AccurateBusy):
    """A job admitted in time waited past its deadline behind slower ones: it never ran."""


class Unreliable(Exception):
    """Whisper's answer cannot be trusted (it looped): the caller should use what it has."""


def token_budget(context: int, seconds: float, max_length: int) -> int:
    """The decoder's length limit for `seconds` of audio after `context` tokens (the prompt, the task, the words
    given): room for what speech needs, within the model's `max_length` positions (Whisper's 448), which a long
    prompt and a 30 s window can reach first."""
    return min(max_length, context + 8 + math.ceil(TOKENS_PER_SECOND * seconds))


def _looping(tokens: Sequence[int], eot: int, room: int, *, forced: int = 0) -> bool:
    """True when the text tokens hold a loop: the decoder used all its room, a group of one to four tokens repeats
    four times in a row (a speaker says "five five", not "five" six times), a longer one twice in a row (Whisper
    wrote a whole sentence twice over a short window: measured on a LibriSpeech clip), or the answer began again
    from its start and stopped. The first `forced` tokens are the answer's given head (`prefix`): a loop counts
    only if it reaches into what Whisper wrote after them (the words said, given again, may repeat as spoken), and
    `room` is for what it wrote."""
    text = [t for t in tokens if t < eot]
    if len(text) - forced >= room:  # CTranslate2 leaves the end token out of its result: a full budget is the sign
        return True
    for size in range(1, len(text) // 2 + 1):
        # A short group four times over ("5 5 5 5"); a long one (a clause, a whole sentence) twice in a row.
        times = 4 if size < LONG_GROUP_TOKENS else 2
        for start in range(max(0, forced - times * size + 1), len(text) - times * size + 1):
            group = text[start : start + size]
            if all(text[start + k * size : start + (k + 1) * size] == group for k in range(1, times)):
                return True
    # The answer begun again and left unfinished: from `period` tokens on it copies its own start, for at least a
    # long group and at least half of what came before ("Concorde returned to its place amidst the tents. Concorde
    # returned to its place amidst the", measured on a LibriSpeech clip at 7 of 16 sample offsets of its cut). Only
    # a copy of the start counts: a phrase that recurs later in a reading is speech.
    for period in range(max(LONG_GROUP_TOKENS + 1, forced), len(text)):
        copied = len(text) - period
        if copied >= LONG_GROUP_TOKENS and 2 * copied >= period and text[period:] == text[:copied]:
            return True
    return False


@dataclass(frozen=True)
class WhisperOptions:
    threads: int = 2  # CTranslate2's intra-op threads for the one job that runs at a time
    max_queue: int = 4  # jobs waiting or running; more raise AccurateBusy
    # The beam width while the accurate pass has time to spare (otherwise greedy, 1: server/engine/accurate.py). The
    # engine sets it from EngineConfig.whisper_beam (5; its comment has the measurements); left alone, greedy.
    beam_size: int = 1
    language: str = "en"
    # The encoder's window: the utterance plus `pad_s`, at least `min_window_s`, at most 30 s.
    min_window_s: float = 10.0
    pad_s: float = 2.0
    # ... at least this for a job decoded in the wide window (server/engine/accurate.py WIDE_WINDOW_MS). 20 s, not
    # Whisper's whole 30 s: as accurate on the held-out talks at real time (29, 30 and 32 words wrong of 317 against
    # 30, 30, 30 and 35), at two thirds of the encoder's cost, so the finals of long windows come sooner (p95 about
    # 1.1 s against 1.4-1.6 s) and more of them have time for it (bench/README.md "Whisper's whole window for long
    # windows").
    wide_window_s: float = 20.0


def encoder_window_s(seconds: float, options: WhisperOptions, *, wide_window: bool = False) -> float:
    """The encoder window for `seconds` of audio: the audio plus `pad_s`, at least `min_window_s` (`wide_window_s`
    with `wide_window`), at most Whisper's 30 s."""
    floor_s = max(options.min_window_s, options.wide_window_s) if wide_window else options.min_window_s
    return min(WINDOW_S, max(floor_s, seconds + options.pad_s))


def encoder_frames(seconds: float, options: WhisperOptions, frames_per_s: int, *, wide_window: bool = False) -> int:
    """The log-mel frames the encoder reads for `seconds` of audio (`encoder_window_s`)."""
    window_s = encoder_window_s(seconds, options, wide_window=wide_window)
    # The encoder halves the frame count: keep it even, and never past Whisper's 3000.
    return min(int(WINDOW_S * frames_per_s), 2 * math.ceil(window_s * frames_per_s / 2))


def words_from_alignment(
    alignment: Sequence[dict[str, Any]], offset_ms: int, *, limit_ms: int | None = None
) -> tuple[Word, ...]:
    """Whisper's aligned words as Words: the spacing Whisper wrote becomes `joins_previous`/`joins_next`.

    Whisper writes a space before each new word; a piece without one (".", ",", "?", "'s", the rest of a
    hyphenated word) belongs to the previous word, and an opening quote or bracket to the next. Times are seconds
    from the window's start; `limit_ms` drops the first new word that begins after it and everything after it
    (Whisper's "Thank you." on trailing noise), with a comma or such that led to it. A mark or the rest of a word
    kept stays with that word wherever the alignment put it.
    """
    out: list[Word] = []
    for item in alignment:
        raw = str(item["word"])
        text = raw.strip()
        if not text:
            continue
        start = offset_ms + round(float(item["start"]) * 1000)
        end = max(start, offset_ms + round(float(item["end"]) * 1000))
        # Whisper writes a space before every new word, the first included: a piece without one continues a word
        # ("-pilot" after "air"), even when the utterance was cut just before it.
        joins_previous = not raw.startswith(" ") and (bool(out) or not text[0].isalnum())
        if limit_ms is not None and start > limit_ms and not joins_previous:
            # A new word begun past the limit. (A mark or the rest of a word kept goes with it, wherever the
            # alignment stretched it: the full stop after a sentence's last word often starts in the pause.)
            while out and out[-1].text in PAUSE_MARKS:
                out.pop()  # the comma before a word left out ends nothing
            break
        if joins_previous and not out and not any(c.isalnum() for c in text):
            continue  # a mark that belonged to the utterance before this one: nothing here to attach it to
        if joins_previous and not any(c.isalnum() for c in text):
            # The alignment stretches a closing mark over the pause after it: it belongs where the word ends.
            start = end = out[-1].end_ms
        # A straight quote is both: the one written onto the previous word closes, so it does not join the next.
        joins_next = text in OPENING and not joins_previous
        probability = item.get("probability")
        out.append(
            Word(
                text,
                start,
                end,
                joins_previous=joins_previous,
                joins_next=joins_next,
                probability=None if probability is None else float(probability),
            )
        )
    return _trim_long_starts(out)


def _after(
    alignment: Sequence[dict[str, Any]], forced: int, decode: Callable[[list[int]], str]
) -> list[dict[str, Any]]:
    """The aligned words after the first `forced` tokens (the words given, `prefix`). A mark Whisper wrote onto the
    last word given ("cough" + ".") is that word's, in the final before, and left out; the rest of a word begun in
    them ("5" + "00") cannot be told apart from it: Unreliable (the caller keeps the fast text)."""
    out, seen = [], 0
    for item in alignment:
        if seen >= forced:
            out.append(item)
        elif seen + len(item["tokens"]) > forced and any(c.isalnum() for c in decode(item["tokens"][forced - seen :])):
            raise Unreliable("Whisper went on with the last word given")
        seen += len(item["tokens"])
    return out


def _trim_long_starts(words: list[Word]) -> tuple[Word, ...]:
    """The alignment lets a word that follows silence (the first one, or the first after a sentence) start where
    the silence starts. Like faster-whisper's word_timestamps, cap such a word at twice the median word length
    (itself at most 0.7 s) by moving its start, never its end."""
    spoken = [w.end_ms - w.start_ms for w in words if w.end_ms > w.start_ms and any(c.isalnum() for c in w.text)]
    if not spoken:
        return tuple(words)
    longest = 2 * min(700, int(np.median(spoken)))
    out: list[Word] = []
    for i, w in enumerate(words):
        after_pause = i == 0 or (words[i - 1].joins_previous and words[i - 1].text in SENTENCE_END)
        if after_pause and w.end_ms - w.start_ms > longest:
            w = dataclasses.replace(w, start_ms=w.end_ms - longest)
        out.append(w)
    return tuple(out)


class WhisperPass:
    """A loaded Whisper model behind a bounded queue. `model` is what faster-whisper's WhisperModel accepts: a
    folder (see server.engine.model) or a model name it downloads into `download_root`."""

    def __init__(self, model: str, options: WhisperOptions = WhisperOptions(), *, download_root: str | None = None):
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        if options.threads < 1 or options.max_queue < 1:
            raise ValueError("threads and max_queue must be at least 1")
        self.options = options
        self.model = WhisperModel(
            model,
            device="cpu",
            compute_type="int8",
            cpu_threads=options.threads,
            num_workers=1,
            download_root=download_root,
        )
        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=options.language
        )
        self._suppress = list(get_suppressed_tokens(self.tokenizer, [-1]) or ())

    def warm_up(self) -> None:
        """One short pass, so the first session doesn't pay CTranslate2's first-call set-up; with a beam, one in the
        wide window too, whose first call cost 0.2 s more than the next ones (in Whisper's 30 s window, as it was
        then: 1.26 s against 1.04-1.08 s for 6 s of speech), enough to miss a deadline (server/engine/accurate.py
        WIDE_MARGIN). After this one (silence, no words), the first such job cost as the next: 1.02 s against
        1.03-1.06 s."""
        silence = np.zeros(SAMPLE_RATE // 2, np.int16).tobytes()
        self.transcribe(silence, 0)
        if self.options.beam_size > 1:
            self.transcribe(silence, 0, wide_window=True)

    def transcribe(
        self,
        pcm: bytes,
        offset_ms: int,
        *,
        limit_ms: int | None = None,
        prompt: str = "",
        prefix: str = "",
        beam_size: int | None = None,
        wide_window: bool = False,
    ) -> tuple[Word, ...]:
        """The words in `pcm` (16 kHz PCM16, at most 30 s; the rest is ignored), times from `offset_ms`. `prompt` is
        the text that came before (the session's previous finals): Whisper reads it as context, so a sentence cut
        into pieces is decoded as one text. `prefix`: the text of the words already said at the start of `pcm`
        (audio heard again for its context): Whisper's answer is made to begin with it, and only the words after it
        are returned. `beam_size`: the beam width for this job (None: the options'). `wide_window`: decode in
        a window of at least `wide_window_s` (nearer the 30 s Whisper was trained on) instead of the utterance's own
        (`encoder_window_s`). Blocking. Raises Unreliable when Whisper's answer is a loop."""
        import ctranslate2

        audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        audio = audio[: int(WINDOW_S * SAMPLE_RATE)]
        seconds = len(audio) / SAMPLE_RATE
        window = encoder_frames(seconds, self.options, self.model.frames_per_second, wide_window=wide_window)
        # Padded with silence before the log-mel, as OpenAI's decoder does, not with zeros after it: a zero in the
        # normalised log-mel is not silence but a steady sound, and with it short utterances lost their first
        # words or gained repeats (measured on a recorded "go forward ten meters": 1 in 9 start offsets decoded
        # as "10 meters"; with silence, 0 in 9).
        hop = self.model.feature_extractor.hop_length
        padded = np.zeros(window * hop, np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        features = self.model.feature_extractor(padded, padding=0)[:, :window]
        content = min(window, math.ceil(len(audio) / hop))
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(features[None]), to_cpu=False)
        # The words already said, as the head of the answer (OpenAI's decoder calls it the prefix): the decoder
        # reads them as its own text so far and goes on from there.
        forced = self.tokenizer.encode(" " + prefix.strip()) if prefix.strip() else []
        context = self._context(prompt) + forced
        budget = token_budget(len(context), seconds, self.model.max_length)
        beam = self.options.beam_size if beam_size is None else beam_size
        tokens, log_prob, no_speech = self._generate(
            encoded, context, forced, budget, repetition_penalty=1.0, beam=beam
        )
        room = budget - len(context)  # what Whisper may write, the cap included: filled, the answer never ended
        if _looping(forced + tokens, self.tokenizer.eot, room, forced=len(forced)):
            # Whisper's loop: the decoder fell into repeating itself ("5, 5 5 5 5 ..." for "five five").
            # Decode once more penalising repeats (deterministic, unlike Whisper's temperature fallback); if
            # that loops too, the text is not to be trusted.
            tokens, log_prob, no_speech = self._generate(
                encoded, context, forced, budget, repetition_penalty=1.3, beam=beam
            )
            if _looping(forced + tokens, self.tokenizer.eot, room, forced=len(forced)):
                raise Unreliable("Whisper repeated itself")
        tokens = [t for t in tokens if t < self.tokenizer.eot]
        if not tokens:
            return ()
        # (With a prefix the no-speech probability is read at the window's start, where the words said are: low,
        # so this gate seldom fires there. An answer with no words where the fast pass heard some is the fast
        # text all the same, server/engine/twopass.py.)
        if no_speech > NO_SPEECH_THRESHOLD and log_prob < LOG_PROB_THRESHOLD:
            return ()
        # Aligned with the forced words before them, as they were decoded; those words are then left out.
        alignment = self.model.find_alignment(self.tokenizer, [forced + tokens], encoded, content)
        return words_from_alignment(
            _after(alignment[0] if alignment else [], len(forced), self.tokenizer.decode), offset_ms, limit_ms=limit_ms
        )

    def _context(self, prompt: str) -> list[int]:
        """Whisper's prompt: the previous text after <|startofprev|> (at most half its context, as OpenAI's
        decoder allows), then the task tokens."""
        task = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        text = prompt.strip()
        if not text:
            return task
        previous = self.tokenizer.encode(" " + text)[-(self.model.max_length // 2 - 1) :]
        return [self.tokenizer.sot_prev, *previous, *task]

    def _generate(
        self, encoded: Any, context: list[int], forced: list[int], budget: int, *, repetition_penalty: float, beam: int
    ) -> tuple[list[int], float, float]:
        """The tokens after `context` (CTranslate2 leaves out the end token), the mean log-probability as Whisper's
        rule counts it (the end token too), and the no-speech probability. `forced`, the end of `context` that is
        the answer's given head, is not among the tokens returned."""
        result = self.model.model.generate(
            encoded,
            [context],
            beam_size=beam,
            max_length=budget,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            return_scores=True,
            return_no_speech_prob=True,
            repetition_penalty=repetition_penalty,
        )[0]
        tokens = list(result.sequences_ids[0])
        if forced:
            # CTranslate2 gives the answer's given head back with the rest (return_prefix), scored 0 but counted
            # in the length its score is divided by. Anything else is not an answer that can be split.
            if tokens[: len(forced)] != forced:
                raise Unreliable("Whisper's answer did not begin with the words given")
            tokens = tokens[len(forced) :]
        text = [t for t in tokens if t < self.tokenizer.eot]
        # CTranslate2's score is the sum of the log-probabilities over the tokens (the given head's included),
        # Whisper's rule the mean over the written ones and the end token.
        log_prob = result.scores[0] * (len(forced) + len(text)) / (len(text) + 1) if text else 0.0
        return tokens, float(log_prob), float(result.no_speech_prob)
