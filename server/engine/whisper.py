"""The accurate pass: Whisper (CTranslate2, through faster-whisper's model wrapper) over one utterance at a time.

One model instance serves every session: its jobs run one at a time on one thread, each using `threads` cores
inside CTranslate2 (which releases the GIL), and at most `max_queue` jobs wait. Sessions ask for an utterance's words
with `submit`; a full queue raises AccurateBusy at once, so the caller falls back instead of lagging.

Why not faster-whisper's `transcribe`: it always pads the audio to Whisper's 30 s window, and the encoder's cost is
proportional to the window, so a 3 s utterance paid for 30 s (measured here: 0.54 s to encode 30 s, 0.09 s for 10 s,
the same text). CTranslate2's Whisper accepts shorter windows, so the window is the utterance plus padding, at
least `min_window_s`: too tight a window (the utterance alone) makes Whisper repeat itself. Words and their times
come from the same cross-attention alignment faster-whisper uses for `word_timestamps`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.engine.types import SAMPLE_RATE, Word

WINDOW_S = 30.0  # Whisper's encoder window: the longest audio one pass can see
# Written with no space after them: an opening quote or bracket Whisper puts before a word.
SENTENCE_END = frozenset({".", "!", "?", "...", "…"})
OPENING = frozenset({'"', "(", "[", "{", "\u201c", "\u2018", "\u00bf", "\u00a1"})  # curly quotes, ¿ ¡
# Whisper's own answer for "nothing was said": these probabilities over its no-speech token, unless the text is
# likely enough anyway (the thresholds faster-whisper and OpenAI's decoder use).
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
TOKENS_PER_SECOND = 8  # a generous bound on what speech needs: it caps runaway repetition, not real text


class AccurateBusy(Exception):
    """The accurate pass's queue is full: the caller should use what it has instead of waiting."""


@dataclass(frozen=True)
class WhisperOptions:
    threads: int = 2  # CTranslate2's intra-op threads for the one job that runs at a time
    max_queue: int = 4  # jobs waiting or running; more raise AccurateBusy
    beam_size: int = 1  # greedy: beam 5 costs about 2x the decoding for little on short utterances
    language: str = "en"
    # The encoder's window: the utterance plus `pad_s`, at least `min_window_s`, at most 30 s.
    min_window_s: float = 10.0
    pad_s: float = 2.0


def words_from_alignment(
    alignment: Sequence[dict[str, Any]], offset_ms: int, *, limit_ms: int | None = None
) -> tuple[Word, ...]:
    """Whisper's aligned words as Words: the spacing Whisper wrote becomes `joins_previous`/`joins_next`.

    Whisper writes a space before each new word; a piece without one (".", ",", "?", "'s", the rest of a
    hyphenated word) belongs to the previous word, and an opening quote or bracket to the next. Times are seconds
    from the window's start; `limit_ms` drops words that begin after it (Whisper's "Thank you." on trailing noise).
    """
    out: list[Word] = []
    for item in alignment:
        raw = str(item["word"])
        text = raw.strip()
        if not text:
            continue
        start = offset_ms + round(float(item["start"]) * 1000)
        end = max(start, offset_ms + round(float(item["end"]) * 1000))
        if limit_ms is not None and start > limit_ms:
            break
        joins_previous = bool(out) and not raw.startswith(" ")
        if joins_previous and not any(c.isalnum() for c in text):
            # The alignment stretches a closing mark over the pause after it: it belongs where the word ends.
            start = end = out[-1].end_ms
        out.append(Word(text, start, end, joins_previous=joins_previous, joins_next=text in OPENING))
    return _trim_long_starts(out)


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
            w = Word(w.text, w.end_ms - longest, w.end_ms, joins_previous=w.joins_previous, joins_next=w.joins_next)
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
        self._prompt = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(self.tokenizer, [-1]) or ())
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper")
        self._lock = threading.Lock()
        self.queued = 0  # jobs submitted and not yet done
        self.jobs = 0  # jobs that ran to the end
        self.busy_s = 0.0  # seconds spent running them, for the benchmark's utilisation figures

    def warm_up(self) -> None:
        """One short pass, so the first session doesn't pay CTranslate2's first-call set-up."""
        self.transcribe(np.zeros(SAMPLE_RATE // 2, np.int16).tobytes(), 0)

    def transcribe(self, pcm: bytes, offset_ms: int, *, limit_ms: int | None = None) -> tuple[Word, ...]:
        """The words in `pcm` (16 kHz PCM16, at most 30 s; the rest is ignored), times from `offset_ms`. Blocking."""
        import ctranslate2

        audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
        audio = audio[: int(WINDOW_S * SAMPLE_RATE)]
        features = self.model.feature_extractor(audio)
        content = int(features.shape[-1])
        seconds = len(audio) / SAMPLE_RATE
        frames_per_s = self.model.frames_per_second
        window_s = min(WINDOW_S, max(self.options.min_window_s, seconds + self.options.pad_s))
        # The encoder halves the frame count: keep it even, and never past Whisper's 3000.
        window = min(int(WINDOW_S * frames_per_s), 2 * math.ceil(window_s * frames_per_s / 2))
        padded = np.zeros((features.shape[0], window), np.float32)
        padded[:, : min(content, window)] = features[:, :window]
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=False)
        result = self.model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self.options.beam_size,
            max_length=min(self.model.max_length, len(self._prompt) + 8 + math.ceil(TOKENS_PER_SECOND * seconds)),
            suppress_blank=True,
            suppress_tokens=self._suppress,
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        if not tokens:
            return ()
        # CTranslate2's score is the mean log-probability per token; Whisper's rule counts the end token too.
        log_prob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and log_prob < LOG_PROB_THRESHOLD:
            return ()
        alignment = self.model.find_alignment(self.tokenizer, [tokens], encoded, min(content, window))
        return words_from_alignment(alignment[0] if alignment else [], offset_ms, limit_ms=limit_ms)

    def submit(self, pcm: bytes, offset_ms: int, *, limit_ms: int | None = None) -> asyncio.Future[tuple[Word, ...]]:
        """Queue one utterance; the future has its words. Cancelling it before it starts frees its place.
        Raises AccurateBusy when `max_queue` jobs are already waiting or running."""
        with self._lock:
            if self.queued >= self.options.max_queue:
                raise AccurateBusy(f"{self.queued} utterances are already waiting for the accurate pass")
            self.queued += 1
        try:
            future = self._executor.submit(self._run, pcm, offset_ms, limit_ms)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return asyncio.wrap_future(future)

    def _run(self, pcm: bytes, offset_ms: int, limit_ms: int | None) -> tuple[Word, ...]:
        started = time.perf_counter()
        try:
            return self.transcribe(pcm, offset_ms, limit_ms=limit_ms)
        finally:
            with self._lock:
                self.jobs += 1
                self.busy_s += time.perf_counter() - started

    def _done(self, _: object) -> None:
        with self._lock:
            self.queued -= 1

    def close(self) -> None:
        """Drop the queued jobs and wait for the running one (blocking)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
