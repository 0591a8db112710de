"""The embedded engine: pocketsphinx's streaming decoder behind the Recognizer interface.

Audio is cut into the Endpointer's 30 ms frames; its voice activity decision opens and closes utterances.
pocketsphinx holds the GIL inside `process_raw` and `end_utt` (measured: a 100 ms chunk holds it 15-20 ms, the
rescoring passes 70-130 ms, and two decoding threads run no faster than one), so by default the decoders live in
worker processes, one executor per process so a session's calls always reach the process that holds its decoder.
`mode="thread"` keeps them in this process (no process start-up; decoding then blocks the event loop while it runs).

Decoders are pooled and reused: a fresh decoder's live cepstral mean starts from the model's guess and the first
utterance decodes badly, so a reused decoder keeps its mean and a fresh one is given the latest mean any session
reported. Each decoder loads its own copy of the model (about 95 MB resident; 64 MB more for the narrower search it
holds beside its own, with its own copy of the language model: measured 92 → 155 MB a decoder), which is what
`max_sessions` bounds.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from server.engine.admission import Lateness
from server.engine.config import FULL_SEARCH, SENTENCES, EngineConfig, Search
from server.engine.types import BYTES_PER_MS, SAMPLE_RATE, RecognizerBusy, RecognizerFailed
from server.transcript import Hypothesis, Word

FRAME_MS = 30  # the Endpointer's frame at 16 kHz: 480 samples, 960 bytes
DECODER_FRAME_MS = 10  # pocketsphinx's feature frame rate is 100 per second
# What a session whose worker process died is told (RecognizerFailed); the stream server tells its client.
WORKER_STOPPED = "the speech engine's worker process stopped; it has been started again"
PREROLL_MS = 210  # audio fed before the Endpointer's speech start, so first words keep their onset

_ALTERNATE = re.compile(r"\(\d+\)$")
logger = logging.getLogger(__name__)

T = TypeVar("T")
_DEFAULTS = EngineConfig()
_ALONE = EngineConfig(whisper=False)
_ALONE_SHED_SEARCH = _ALONE.shed_search()
# The name of the narrower search each decoder holds beside its own (`DecoderConfig.shed_search`).
SHED = "shed"
# A long utterance is cut (`DecoderConfig.max_utterance_ms`) in a pause: the decoder's newest word ended before
# the cut and this long (ms) before the newest frame decoded; looking every this many 30 ms frames.
CUT_PAUSE_MS = 150
CUT_LOOK_FRAMES = 4
# Built alone (the emulators, tools), the fast pass makes its own finals: the endpointer for whole sentences.
_ENDPOINTER = SENTENCES


@dataclass(frozen=True)
class DecoderConfig:
    """The fast pass's decoder and endpointer settings: what each worker needs to build them. The defaults are the
    fast pass alone (`from_engine(EngineConfig(whisper=False))`); `from_engine` is how the engine sets them."""

    # Paths; empty means the model shipped in the wheel. `jsgf`, a grammar, replaces the language model `lm`.
    hmm: str = ""
    lm: str = ""
    dictionary: str = ""
    jsgf: str = ""
    # The Endpointer (30 ms frames): `vad_window_s` seconds of audio it decides on (the shortest pause that ends an
    # utterance, and how late a final comes), of which `vad_ratio` must be speech to start an utterance (and that
    # much non-speech to end one), and the voice activity detector's aggressiveness `vad_mode`, 0 to 3.
    vad_window_s: float = _ENDPOINTER.window_s
    vad_ratio: float = _ENDPOINTER.ratio
    vad_mode: int = _ENDPOINTER.vad_mode
    # Rescoring passes at the end of each utterance (better finals, later).
    fwdflat: bool = _DEFAULTS.fwdflat
    bestpath: bool = _DEFAULTS.bestpath
    # Milliseconds of audio before the Endpointer's speech start fed to the decoder, so first words keep their onset.
    preroll_ms: int = PREROLL_MS
    # Pool decoders and carry the cepstral mean to fresh ones (False: every session starts cold; for measurements).
    keep_warm: bool = True
    # Milliseconds of audio between looks at the partial text (an interim goes out when it changed), while a worker
    # runs at most two streams; more thin the looks out (`_Engine.partial_every_ms`).
    partial_every_ms: int = _DEFAULTS.partial_every_ms
    # How hard pocketsphinx prunes its search.
    search: Search = FULL_SEARCH
    # The narrower search (only its widths differ from `search`: `EngineConfig.shed_search`), how far behind real
    # time (ms) a session's audio must be for the utterances it begins to use it, and for how long after (ms of
    # audio): `EngineConfig.shed_after_ms` (0: never) and `shed_hold_ms`.
    shed_search: Search = _ALONE_SHED_SEARCH
    shed_after_ms: int = _ALONE.shed_after_ms
    shed_hold_ms: int = _ALONE.shed_hold_ms
    # An utterance that has run this long (ms; 0: no limit) ends at the decoder's next pause between words, or at
    # twice this long wherever it is. In steady noise the Endpointer can hear speech without end: measured at 10 dB
    # SNR on the held-out recordings, utterances of 43 and 56 s, so no final for as long, and Whisper, which reads
    # 30 s, never heard the rest (bench/README.md "Held-out recordings").
    max_utterance_ms: int = 10_000
    # pocketsphinx's own log: FATAL keeps it out of the server's; INFO prints each utterance's search statistics.
    loglevel: str = "FATAL"

    @classmethod
    def from_engine(cls, config: EngineConfig) -> DecoderConfig:
        """The fast pass as the engine runs it, alone or beside Whisper: the mode's endpointer and search
        (`config.endpointer()`, `config.search()`), and rescoring beside Whisper only with `rescoring_with_whisper`
        (there it would only polish the endpoint interim and a fallback final, and delay them)."""
        rescore = not config.whisper or config.rescoring_with_whisper
        endpointer = config.endpointer()
        return cls(
            hmm=config.hmm,
            lm=config.lm,
            dictionary=config.dictionary,
            jsgf=config.jsgf,
            vad_window_s=endpointer.window_s,
            vad_ratio=endpointer.ratio,
            vad_mode=endpointer.vad_mode,
            fwdflat=config.fwdflat and rescore,
            bestpath=config.bestpath and rescore,
            partial_every_ms=config.partial_every_ms,
            search=config.search(),
            shed_search=config.shed_search(),
            shed_after_ms=config.shed_after_ms,
            shed_hold_ms=config.shed_hold_ms,
        )

    def decoder_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "loglevel": self.loglevel,
            "samprate": SAMPLE_RATE,
            "fwdflat": self.fwdflat,
            "bestpath": self.bestpath,
            "maxhmmpf": self.search.max_hmms,
            "maxwpf": self.search.max_words,
            "topn": self.search.top_gaussians,
            "pl_window": self.search.lookahead_frames,
        }
        if self.hmm:
            kwargs["hmm"] = self.hmm
        if self.dictionary:
            kwargs["dict"] = self.dictionary
        if self.jsgf:
            kwargs["jsgf"] = self.jsgf
        elif self.lm:
            kwargs["lm"] = self.lm
        return kwargs


def spoken_word(token: str) -> str | None:
    """The word a listener would write for a decoder token, or None for silence, sentence marks and fillers."""
    # "(NULL)" marks a grammar's empty transitions; "[NOISE]" and "++BREATH++" style tokens are fillers.
    if token in ("<s>", "</s>", "<sil>", "(NULL)") or token.startswith(("[", "+")):
        return None
    return _ALTERNATE.sub("", token)


@dataclass
class _Pooled:
    decoder: Any
    # False until the decoder has finished an utterance or been given a cepstral mean: its first utterance is
    # then decoded a second time with the mean that utterance produced.
    warm: bool
    # The decoder's own search, and whether it also holds the narrower one (SHED): a grammar's does not.
    search: str
    sheds: bool


def _build_decoder(config: DecoderConfig) -> _Pooled:
    from pocketsphinx import Decoder

    decoder = Decoder(**config.decoder_kwargs())
    search = decoder.current_search()
    sheds = bool(config.shed_after_ms) and not config.jsgf
    if sheds:
        # A search reads its pruning from the decoder's config when it is made (pocketsphinx's ngram_search_init),
        # so the second search is made with the narrower values, then they are put back. It shares the acoustic
        # model and dictionary; the language model is read again from its file (add_lm with the decoder's own
        # model object built a different, larger search tree: 247,280 channels against 152,500, and 84 words of
        # 184 wrong clean against 60 for a decoder built with these values, which this one matches word for word).
        settings = decoder.config
        width = settings["maxhmmpf"], settings["maxwpf"]
        settings["maxhmmpf"], settings["maxwpf"] = config.shed_search.max_hmms, config.shed_search.max_words
        try:
            decoder.add_lm_file(SHED, settings["lm"])
        except RuntimeError:
            # Without it the session decodes as it always did; never a reason to refuse one.
            logger.warning("pocketsphinx could not make the narrower search: sessions will not shed", exc_info=True)
            sheds = False
        finally:
            settings["maxhmmpf"], settings["maxwpf"] = width
    return _Pooled(decoder, warm=False, search=search, sheds=sheds)


class _Stream:
    """One session's decoding state. Runs in a worker; never touched by two threads at once."""

    def __init__(self, pooled: _Pooled, config: DecoderConfig) -> None:
        from pocketsphinx import Endpointer

        self.pooled = pooled
        self.decoder = pooled.decoder
        self.config = config
        self.utt_audio: list[bytes] | None = None  # kept only while the decoder is cold
        self.endpointer = Endpointer(window=config.vad_window_s, ratio=config.vad_ratio, vad_mode=config.vad_mode)
        self.frame_bytes: int = self.endpointer.frame_bytes
        preroll_frames = -(-config.preroll_ms // FRAME_MS)
        window_frames = round(config.vad_window_s * 1000 / FRAME_MS)
        # The Endpointer hands frames back a window late, so the preroll lies that far back in what it was given.
        self.history: collections.deque[tuple[int, bytes]] = collections.deque(
            maxlen=preroll_frames + window_frames + 2
        )
        self.preroll_frames = preroll_frames
        self.pending = bytearray()
        # Bytes at the head of `pending` (the frame not yet whole) the decoder has already read: inside an
        # utterance the decoder takes what came at once, not 30 ms at a time (in 50 ms chunks the unfinished part
        # is 20, 10 or 0 ms: 10 ms sooner on average).
        self.pending_decoded = 0
        self.frames_in = 0
        self.next_out = 0  # index of the next frame the Endpointer returns inside an utterance
        self.decoded_until = 0  # the next frame this utterance's decoder reads
        self.utt_end = 0  # the first frame after the last utterance, as the Endpointer placed its end
        # The next utterance never decodes before `floor` (the end of the last word a final kept), and its preroll
        # reaches back to `reach` (where the first word that final left out starts), so that word is heard again.
        self.floor = 0
        self.reach: int | None = None
        self.in_utt = False
        self.utt_start_ms = 0
        # types.EndsAtPauses: the utterance in progress ends at the next whole frame if it began before this (ms).
        # At a frame, not mid-way: the head of an unfinished frame may have been decoded into it already.
        self.cut_from: int | None = None
        self.since_partial_ms = 0
        self.partial_text = ""
        self.finished = False
        self.cmn: str | None = None  # set when an utterance ends, for the recognizer to hand to fresh decoders
        # Utterances begun before this frame are decoded with the narrower search: set by a feed whose audio was
        # `shed_after_ms` behind real time, to `shed_hold_ms` past that feed's frames. Counted: utterances begun so.
        self.shed_until = 0
        self.shed_utterances = 0
        # ms this stream spent on a cold decoder's second decode (`redecoded_ms`, for the engine to add to what its
        # worker stalled), the worker's stalls this stream has counted (`stall_seen_ms`: the engine's running total
        # when it last fed), and the part of them its audio is still behind by (`stall_debt_ms`, not counted toward
        # shedding).
        self.redecoded_ms = 0.0
        self.stall_seen_ms = 0.0
        self.stall_debt_ms = 0.0

    def feed(
        self,
        pcm: bytes,
        partial_every_ms: int | None = None,
        behind_ms: float = 0.0,
        stalled_ms: float = 0.0,
        quiet_from_ms: int | None = None,
    ) -> list[Hypothesis]:
        """`stalled_ms`: the running total of the worker's stalls (`_Engine.stalled_ms`); `quiet_from_ms`: a
        detector beside this decoder has heard no speech since then (types.EndsAtPauses)."""
        if self.finished:
            raise RuntimeError("feed() after finish()")
        self.pending += pcm
        if quiet_from_ms is not None:
            self.cut_from = quiet_from_ms
        # A cold decoder's second decode of its first utterance, or a decoder built for a new session, holds back
        # the audio of every stream on its worker once, by as long as it took: not a lack of CPU, so not a reason to
        # shed (the second decode made a lone newcomer's first session shed 2-4 utterances). The debt shrinks as the
        # audio catches up, so a session that falls further behind sheds.
        self.stall_debt_ms += stalled_ms - self.stall_seen_ms
        self.stall_seen_ms = stalled_ms
        late = behind_ms - self.stall_debt_ms
        self.stall_debt_ms = min(self.stall_debt_ms, max(0.0, behind_ms))
        if 0 < self.config.shed_after_ms <= late:
            fed = self.frames_in + len(self.pending) // self.frame_bytes + 1
            self.shed_until = fed + self.config.shed_hold_ms // FRAME_MS
        out: list[Hypothesis] = []
        usable = len(self.pending) - len(self.pending) % self.frame_bytes
        for offset in range(0, usable, self.frame_bytes):
            final = self._frame(bytes(self.pending[offset : offset + self.frame_bytes]))
            if final is not None:
                out.append(final)
        del self.pending[:usable]
        if self.in_utt and len(self.pending) > self.pending_decoded:
            self._decode(bytes(self.pending[self.pending_decoded :]))
            self.pending_decoded = len(self.pending)
        partial = self._partial(len(pcm) // BYTES_PER_MS, partial_every_ms or self.config.partial_every_ms)
        if partial is not None:
            out.append(partial)
        return out

    def finish(self) -> list[Hypothesis]:
        if self.finished:
            return []
        self.finished = True
        out: list[Hypothesis] = []
        # Inside an utterance every byte received was decoded as it came, the head of an unfinished frame
        # included (feed), so nothing is left to decode here; the Endpointer's end_stream() would hand back
        # nothing of the window it holds anyway (measured with pocketsphinx 5.1.1: 0 bytes for 120 ms of speech).
        self.pending.clear()
        if self.in_utt:
            final = self._end_utterance()
            if final is not None:
                out.append(final)
        return out

    def release(self) -> None:
        if self.in_utt:
            self.decoder.end_utt()
            self.in_utt = False
        self.finished = True

    def _frame(self, frame: bytes) -> Hypothesis | None:
        index = self.frames_in
        self.frames_in += 1
        self.history.append((index, frame))
        was_speech = self.endpointer.in_speech
        speech = self.endpointer.process(frame)
        if speech is None:
            return None
        if not was_speech:
            self._start_utterance(round(self.endpointer.speech_start * 1000 / FRAME_MS))
        # The Endpointer hands frames back a window late; inside an utterance each frame is decoded as it arrives
        # instead, so the partial text is a window sooner (120 ms beside Whisper; measured on the 13 human clips
        # in 50 ms chunks: speech onset → first words 500 → 410 ms of audio p50, a partial's last word end → its
        # arrival 210 → 120 ms). The price is the window after an utterance's end, decoded with it: see
        # _end_utterance.
        # The head of this frame may have been decoded already, while it was not yet whole (`pending_decoded`);
        # older frames are decoded here only at an utterance's start (its preroll), when nothing was.
        self._decode(self._undecoded(index) + frame[self.pending_decoded :])
        self.pending_decoded = 0
        self.decoded_until = index + 1
        self.next_out += 1
        if not self.endpointer.in_speech:
            self.utt_end = self.next_out
            return self._end_utterance(trim=True)
        cut_from, self.cut_from = self.cut_from, None
        if cut_from is not None and self.utt_start_ms < cut_from:
            return self._cut()
        return self._cut_long_utterance()

    def _cut_long_utterance(self) -> Hypothesis | None:
        """The utterance's final and a new utterance from here, if it has run `max_utterance_ms` and the decoder is
        in a pause between words at the cut (its newest word ended before it, and `CUT_PAUSE_MS` before the newest
        frame decoded), or has run twice that. The cut is where the Endpointer has got to (`next_out`, a window
        behind the newest frame in), as at an endpoint: a word begun after it goes to the next utterance, whose
        preroll reaches back to it."""
        limit = self.config.max_utterance_ms
        length_ms = self.next_out * FRAME_MS - self.utt_start_ms
        if limit <= 0 or length_ms < limit:
            return None
        if length_ms < 2 * limit:
            if self.next_out % CUT_LOOK_FRAMES:
                return None  # looking at the words costs about as much as decoding: a few times a second
            words = self._words()
            if words and words[-1].end_ms > min(self.next_out * FRAME_MS, self.frames_in * FRAME_MS - CUT_PAUSE_MS):
                return None
        return self._cut()

    def _cut(self) -> Hypothesis | None:
        """End the utterance where the Endpointer has got to (`next_out`) and begin the next one there. Called by
        _frame once the frame is decoded, so no part of an unfinished frame was decoded into the utterance ended."""
        next_out = self.utt_end = self.next_out
        final = self._end_utterance(trim=True)
        self._start_utterance(next_out)
        # The new utterance decodes from past the end of a word the final kept (`floor`), but the Endpointer is
        # where it was: the next utterance's end is placed by it.
        self.next_out = next_out
        # What an endpoint's start decodes within its _frame: the new utterance's frames so far, this one included,
        # now, so that the head of the next frame (feed) comes after them and finish() finds nothing undecoded.
        self._decode(self._undecoded(self.frames_in))
        self.decoded_until = self.frames_in
        return final

    def _undecoded(self, until: int) -> bytes:
        """The kept frames from `decoded_until` up to frame `until` (not included): an utterance's start."""
        return b"".join(f for i, f in self.history if self.decoded_until <= i < until)

    def _start_utterance(self, start: int) -> None:
        # The preroll can lie in frames the last utterance decoded after its end (the Endpointer's window): they
        # are decoded again here, and reach back to a word that utterance's final left out, but never into a
        # word it kept.
        start = max(start, self.floor)
        first = start - self.preroll_frames
        if self.reach is not None:
            first = min(first, self.reach)
        first = max(first, self.floor, self.frames_in - len(self.history), 0)
        self.reach = None
        # The search can only change between utterances (pocketsphinx refuses while one is decoding), so a session
        # that fell behind sheds from its next utterance on, and gets its search back with the first utterance begun
        # `shed_hold_ms` of audio after it was last behind: back at once, it would fall behind again within it.
        shed = self.pooled.sheds and self.frames_in < self.shed_until
        if self.pooled.sheds:
            self.decoder.activate_search(SHED if shed else self.pooled.search)
        self.shed_utterances += shed
        self.decoder.start_utt()
        self.in_utt = True
        self.utt_start_ms = first * FRAME_MS
        self.next_out = start
        self.partial_text = ""
        self.since_partial_ms = 0
        # A cold decoder decodes its first utterance again at its end, with the mean that utterance gave (5 % of words
        # wrong against 9 %: bench/README.md "Warmth"): not when shedding, as that second decode (up to 1.26 s of one
        # core seen) is what a session behind real time cannot spare, nor while still behind from another's (cold
        # sessions opened together would each stall the worker in turn).
        behind = shed or self.stall_debt_ms > 0
        self.utt_audio = None if self.pooled.warm or not self.config.keep_warm or behind else []
        self.decoded_until = first  # _frame decodes the preroll and everything since, up to the newest frame

    def _decode(self, pcm: bytes) -> None:
        if not pcm:
            return  # process_raw raises IndexError on an empty buffer
        if self.utt_audio is not None:
            self.utt_audio.append(pcm)
        self.decoder.process_raw(pcm)

    def _end_utterance(self, *, trim: bool = False) -> Hypothesis | None:
        """The utterance's final. `trim`: it ended at the Endpointer's end (not at the stream's), so the frames
        decoded after `utt_end` were the window that decided it; a word starting there belongs to the next
        utterance, whose preroll reaches back to it if speech follows within the frames kept (otherwise the
        Endpointer heard no speech there)."""
        self.decoder.end_utt()
        self.in_utt = False
        if self.utt_audio is not None:
            began = time.perf_counter()
            self.decoder.start_utt()
            self.decoder.process_raw(b"".join(self.utt_audio))
            self.decoder.end_utt()
            self.utt_audio = None
            self.redecoded_ms += (time.perf_counter() - began) * 1000
        self.pooled.warm = True
        if self.config.keep_warm:
            self.cmn = self.decoder.get_cmn()
        words = self._words()
        if trim:
            kept = tuple(w for w in words if w.start_ms < self.utt_end * FRAME_MS)
            left_out = words[len(kept) :]
            self.reach = left_out[0].start_ms // FRAME_MS if left_out else None
            self.floor = max(self.utt_end, -(-kept[-1].end_ms // FRAME_MS) if kept else 0)
            words = kept
        had_partial = bool(self.partial_text)
        self.partial_text = ""
        if not words and not had_partial:
            return None
        return self._hypothesis(words, True)

    def _partial(self, fed_ms: int, every_ms: int) -> Hypothesis | None:
        if not self.in_utt:
            return None
        self.since_partial_ms += fed_ms
        if self.since_partial_ms < every_ms:
            return None
        # The remainder counts towards the next look, so chunks that do not divide it (20 ms) still look every
        # `every_ms` on average, not every 60.
        self.since_partial_ms %= every_ms
        hyp = self.decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if text == self.partial_text:
            return None
        words = self._words()
        if not words:
            return None
        self.partial_text = text
        return self._hypothesis(words, False)

    def _words(self) -> tuple[Word, ...]:
        words = []
        for seg in self.decoder.seg():
            text = spoken_word(seg.word)
            if text is None:
                continue
            start = self.utt_start_ms + seg.start_frame * DECODER_FRAME_MS
            end = self.utt_start_ms + (seg.end_frame + 1) * DECODER_FRAME_MS
            words.append(Word(text, start, end))
        return tuple(words)

    def _hypothesis(self, words: tuple[Word, ...], final: bool) -> Hypothesis:
        if words:
            return Hypothesis(words, final, words[0].start_ms, words[-1].end_ms)
        end = self.utt_start_ms + self.decoder.n_frames() * DECODER_FRAME_MS
        return Hypothesis(words, final, self.utt_start_ms, end)


class _Engine:
    """The decoders and streams of one worker (a process, or this process in thread mode)."""

    def __init__(self, config: DecoderConfig) -> None:
        self.config = config
        self.idle: list[_Pooled] = []
        self.streams: dict[int, _Stream] = {}
        self.lock = threading.Lock()
        # The running total of this worker's stalls (_Stream.stall_debt_ms): decoder builds and second decodes.
        self.stalled_ms = 0.0

    def _decoder(self, cmn: str | None) -> _Pooled:
        with self.lock:
            pooled = self.idle.pop() if self.idle else None
        if pooled is None:
            # A build (0.3-0.6 s of CPU with the narrower search) holds back every stream of this worker, once:
            # like a second decode, not a lack of CPU (with six sessions opened together, the first ones shed).
            began = time.perf_counter()
            pooled = _build_decoder(self.config)
            self._stalled((time.perf_counter() - began) * 1000)
        if not pooled.warm and cmn is not None and self.config.keep_warm:
            pooled.decoder.set_cmn(cmn)
            pooled.warm = True
        return pooled

    def warm(self) -> None:
        decoder = self._decoder(None)
        with self.lock:
            self.idle.append(decoder)

    def open(self, sid: int, cmn: str | None) -> None:
        stream = _Stream(self._decoder(cmn), self.config)
        with self.lock:
            stream.stall_seen_ms = self.stalled_ms  # stalls before it opened held none of its audio back
            self.streams[sid] = stream

    def feed(
        self, sid: int, pcm: bytes, behind_ms: float = 0.0, quiet_from_ms: int | None = None
    ) -> tuple[list[Hypothesis], str | None, int]:
        stream = self.streams[sid]
        hyps = stream.feed(pcm, self.partial_every_ms(), behind_ms, self.stalled_ms, quiet_from_ms)
        self._hand_on_stall(stream)
        return hyps, stream.cmn, stream.shed_utterances

    def _hand_on_stall(self, stream: _Stream) -> None:
        """A stream's second decode held up every stream of this worker by as long."""
        if stream.redecoded_ms:
            self._stalled(stream.redecoded_ms)
            stream.redecoded_ms = 0.0

    def _stalled(self, ms: float) -> None:
        """Every stream of this worker was held up `ms`: each takes it as lateness that is not for want of CPU at its
        next feed (`_Stream.stall_debt_ms`). Each stream writes only its own state."""
        with self.lock:
            self.stalled_ms += ms

    def partial_every_ms(self) -> int:
        """How often a stream looks at its partial text, by how many streams share this worker. A look costs
        about as much CPU as decoding (measured on the human clips in 50 ms frames: RTF 0.28 looking every 50 ms,
        0.20 every 100 ms, 0.15 never), so with more than two streams on a worker the looks thin out and the
        worker keeps real time: interims come a little less often instead of falling behind."""
        with self.lock:
            streams = len(self.streams)
        return self.config.partial_every_ms * max(1, -(-streams // 2))

    def finish(self, sid: int) -> tuple[list[Hypothesis], str | None, int]:
        stream = self.streams[sid]
        hyps = stream.finish()
        self._hand_on_stall(stream)
        return hyps, stream.cmn, stream.shed_utterances

    def close(self, sid: int) -> int:
        """Release the stream's decoder; the utterances it shed, for a count a cancelled call did not carry."""
        with self.lock:
            stream = self.streams.pop(sid, None)
        if stream is None:
            return 0
        stream.release()
        if self.config.keep_warm:
            with self.lock:
                self.idle.append(stream.pooled)
        return stream.shed_utterances


_PROCESS_ENGINE: _Engine | None = None


def _process_init(config: DecoderConfig) -> None:
    global _PROCESS_ENGINE
    _PROCESS_ENGINE = _Engine(config)
    _PROCESS_ENGINE.warm()


def _process_call(method: str, *args: Any) -> Any:
    assert _PROCESS_ENGINE is not None, "worker process was not initialised"
    return getattr(_PROCESS_ENGINE, method)(*args)


class _Worker:
    """Where a session's decoder lives; every call for that session goes to the same worker."""

    def __init__(
        self,
        executor: concurrent.futures.Executor,
        engine: _Engine | None,
        rebuild: Callable[[], concurrent.futures.Executor] | None = None,
    ) -> None:
        self.executor = executor
        self.engine = engine  # None when the engine lives in a worker process
        self.sessions = 0
        self._rebuild = rebuild
        # Processes started in its place after one died: a session opened in an earlier one has no decoder here.
        self.generation = 0

    async def call(self, method: str, *args: Any, generation: int | None = None) -> Any:
        """`method` of the engine in this worker's process. `generation`: the process the caller's stream lives in;
        if that one has since been replaced, the call fails (the new process knows no stream of the caller's)."""
        loop = asyncio.get_running_loop()
        executor = self.executor
        if generation is not None and generation != self.generation:
            raise RecognizerFailed(WORKER_STOPPED)
        try:
            if self.engine is None:
                return await loop.run_in_executor(executor, _process_call, method, *args)
            fn: Callable[..., Any] = getattr(self.engine, method)
            return await loop.run_in_executor(executor, fn, *args)
        except concurrent.futures.BrokenExecutor as exc:
            # The worker process died (the OOM killer, a crash): its sessions are lost, but the next ones get a
            # fresh process instead of failing until the app restarts.
            if self._rebuild is not None and self.executor is executor:
                self.executor = self._rebuild()
                self.generation += 1
                executor.shutdown(wait=False, cancel_futures=True)
            raise RecognizerFailed(WORKER_STOPPED) from exc


class PocketsphinxRecognizer:
    """pocketsphinx behind the Recognizer interface.

    `decoder` holds the decoder and endpointer settings (DecoderConfig; its defaults are the fast pass alone, and
    `DecoderConfig.from_engine` gives the engine's). The pool's own options: `max_sessions` (more concurrent
    sessions raise RecognizerBusy; each holds a decoder and its copy of the model), `admit_behind_ms` (a new session
    raises RecognizerBusy while one of the open ones is that far behind real time; 0: never), `workers` (decoding
    processes or threads; default the number of cores, at most `max_sessions`), `mode` ("process" or "thread"),
    `clock` (seconds, for how fresh a session's word on its lateness is).
    """

    name = "pocketsphinx"

    def __init__(
        self,
        decoder: DecoderConfig = DecoderConfig(),
        *,
        max_sessions: int = _DEFAULTS.max_sessions,
        admit_behind_ms: float = _DEFAULTS.admit_behind_ms,
        workers: int | None = None,
        mode: Literal["process", "thread"] = "process",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if mode not in ("process", "thread"):
            raise ValueError(f"unknown mode {mode!r}: choose process or thread")
        self.config = decoder
        self.max_sessions = max_sessions
        # Each open session's last word from the server on how far behind real time its audio is.
        self.lateness = Lateness(admit_behind_ms, clock)
        self.workers = max(1, min(workers or os.cpu_count() or 1, max_sessions))
        self.mode = mode
        self.active = 0
        # Utterances the streams began with the narrower search (they were behind real time), and who is told.
        self.shed_utterances = 0
        self.on_shed: Callable[[int], None] | None = None
        self._cmn: str | None = None
        self._ids = itertools.count(1)
        self._pool: list[_Worker] = []
        self._executors: list[concurrent.futures.Executor] = []

    def _start(self) -> None:
        if self._pool:
            return
        if self.mode == "thread":
            engine = _Engine(self.config)
            threads = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="sphinx")
            self._executors = [threads]
            self._pool = [_Worker(threads, engine) for _ in range(self.workers)]
            return
        for _ in range(self.workers):
            self._pool.append(_Worker(self._process_executor(), None, rebuild=self._process_executor))

    def _process_executor(self) -> concurrent.futures.Executor:
        # spawn, not fork: the parent runs an event loop and threads, which a forked child would inherit broken.
        context = multiprocessing.get_context("spawn")
        return concurrent.futures.ProcessPoolExecutor(
            1, mp_context=context, initializer=_process_init, initargs=(self.config,)
        )

    async def open(self) -> PocketsphinxSession:
        if self.active >= self.max_sessions:
            raise RecognizerBusy(f"all {self.max_sessions} local recognizer sessions are busy; try again when one ends")
        behind = self.lateness.behind_ms()
        if behind:
            logger.warning("a session was refused: one of %d open is %.0f ms behind real time", self.active, behind)
            # The stream server says "The service is busy, try again later: " before this.
            raise RecognizerBusy(
                f"the local recognizer is {behind / 1000:.1f} s behind real time with the sessions it has"
            )
        self._start()
        self.active += 1
        worker = min(self._pool, key=lambda w: w.sessions)
        worker.sessions += 1
        sid = next(self._ids)
        # The process the stream is opened in (read with the call's start: another session's call may replace it).
        generation = worker.generation
        try:
            try:
                await _uncancelled(worker.call("open", sid, self._cmn, generation=generation))
            except RecognizerFailed:
                generation = worker.generation
                await _uncancelled(worker.call("open", sid, self._cmn, generation=generation))  # in the fresh one
        except asyncio.CancelledError:
            # The decoder was built all the same (the call ran to its end): release it before giving up the slot.
            with contextlib.suppress(Exception):
                await _uncancelled(worker.call("close", sid))
            worker.sessions -= 1
            self.active -= 1
            raise
        except BaseException:
            worker.sessions -= 1
            self.active -= 1
            raise
        return PocketsphinxSession(self, worker, sid, generation)

    async def warm_up(self) -> None:
        """Start the workers and build one decoder in each, so the first session doesn't wait for them."""
        self._start()
        workers = self._pool if self.mode == "process" else self._pool[:1]
        await asyncio.gather(*(w.call("warm") for w in workers))

    async def aclose(self) -> None:
        """Stop the workers. Sessions still open fail on their next call."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        """aclose() for callers without an event loop (fixtures, atexit)."""
        executors = list(dict.fromkeys([*self._executors, *(w.executor for w in self._pool)]))
        self._executors, self._pool = [], []
        for executor in executors:
            executor.shutdown(wait=True, cancel_futures=True)

    def behind_ms(self) -> float:
        """How far behind real time the furthest-behind open session has stayed (`Lateness.behind_ms`)."""
        return self.lateness.behind_ms()

    def _report(self, cmn: str | None, shed: int) -> None:
        if cmn is not None:
            self._cmn = cmn
        if shed > 0:  # a stream already gone reports 0 at close: nothing more
            self.shed_utterances += shed
            if self.on_shed is not None:
                self.on_shed(shed)


class PocketsphinxSession:
    def __init__(self, owner: PocketsphinxRecognizer, worker: _Worker, sid: int, generation: int) -> None:
        self._owner = owner
        self._worker = worker
        self._sid = sid
        self._generation = generation  # the worker process that holds its decoder
        self._closed = False
        # Calls of one session must reach the decoder in order even if a caller is cancelled mid-call.
        self._lock = asyncio.Lock()
        self._behind_ms = 0.0  # the server's last word on how far behind real time the audio is (types.Sheds)
        self._shed = 0  # utterances the stream began with the narrower search, as last reported
        self._quiet_from_ms: int | None = None  # types.EndsAtPauses, for the next feed

    def behind(self, ms: float) -> None:
        if self._closed:
            return
        self._behind_ms = ms
        self._owner.lateness.told(self._sid, ms)

    def end_at_pause(self, quiet_from_ms: int) -> None:
        self._quiet_from_ms = quiet_from_ms

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must be an even number of bytes")
        quiet_from_ms, self._quiet_from_ms = self._quiet_from_ms, None
        with self._owner.lateness.feeding(self._sid):
            return await self._call("feed", pcm, self._behind_ms, quiet_from_ms)

    async def finish(self) -> list[Hypothesis]:
        return await self._call("finish")

    async def _call(self, method: str, *args: Any) -> list[Hypothesis]:
        if self._closed:
            raise RuntimeError("session is closed")
        async with self._lock:
            # Checked as the call starts, after any call of this session it queued behind: its decoder may have died
            # with the process another call found dead, and the new one knows no stream of this id (a KeyError
            # there, "Internal error" to the client).
            call = self._worker.call(method, self._sid, *args, generation=self._generation)
            hyps, cmn, shed = await _uncancelled(call)
        self._report(cmn, shed)
        return list(hyps)

    def _report(self, cmn: str | None, shed: int) -> None:
        """Hand the recognizer the stream's cepstral mean and the utterances it shed since the last report (the
        worker gives the stream's running count)."""
        self._shed, new = shed, shed - self._shed
        self._owner._report(cmn, new)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            async with self._lock:
                shed = await _uncancelled(self._worker.call("close", self._sid, generation=self._generation))
            # A feed cut short by a cancellation (the stream stopped) never reported what it shed.
            self._report(None, shed)
        except (RuntimeError, RecognizerFailed):
            pass  # the recognizer was shut down or its worker died: nothing is left to release
        finally:
            self._worker.sessions -= 1
            self._owner.active -= 1
            self._owner.lateness.forget(self._sid)


async def _uncancelled(coro: Any) -> Any:
    """Await `coro` to completion even if the caller is cancelled (then re-raise the cancellation), so the
    decoder is never used by the next call while this one still runs in a worker."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
