"""The embedded pocketsphinx engine through the Recognizer interface, on the committed Festival clips."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.speech import (
    HUMAN_CLIPS,
    READING,
    TRANSCRIPTS,
    human_reference,
    load_clip,
    load_human,
    normalise,
    reference,
    with_noise,
    word_errors,
)
from server.engine.admission import LATENESS_FRESH_S, LATENESS_SUSTAINED_S
from server.engine.config import FULL_SEARCH, LEAN_SEARCH, EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.sphinx import (
    DECODER_FRAME_MS,
    SHED,
    DecoderConfig,
    PocketsphinxRecognizer,
    _build_decoder,
    _Engine,
    _Pooled,
    _Stream,
    spoken_word,
)
from server.engine.types import BYTES_PER_MS, EndsAtPauses, RecognizerBusy
from server.transcript import Hypothesis
from tests.test_wer import finals_text, transcribe

GRAMMAR = Path(__file__).parent / "data" / "commands.gram"
WEATHER = "slt-weather-16k.wav"
STATION = "kal-station-16k.wav"
TWO = "slt-two-sentences-16k.wav"
ENDS_IN_SPEECH = "austen-0880.wav"  # "he was not an ill disposed young man", 2.99 s, speech to the last sample

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def processes() -> Iterator[PocketsphinxRecognizer]:
    """The default configuration: decoders in two worker processes, shared by the tests of this module."""
    recognizer = PocketsphinxRecognizer(workers=2, max_sessions=4)
    yield recognizer
    recognizer.shutdown()


def errors_against(name: str, hyps: list[Hypothesis]) -> int:
    return word_errors(reference(name), finals_text(hyps))


def test_spoken_word() -> None:
    assert spoken_word("hello") == "hello"
    assert spoken_word("read(2)") == "read"
    for filler in ("<s>", "</s>", "<sil>", "[NOISE]", "++BREATH++", "(NULL)"):
        assert spoken_word(filler) is None


def test_load_recognizer_builds_it() -> None:
    recognizer = PocketsphinxRecognizer(DecoderConfig(vad_window_s=0.5), max_sessions=2)
    assert isinstance(recognizer, PocketsphinxRecognizer)
    assert (recognizer.max_sessions, recognizer.config.vad_window_s) == (2, 0.5)


async def test_partials_then_final(processes: PocketsphinxRecognizer) -> None:
    hyps = await transcribe(processes, load_clip(WEATHER))
    kinds = [h.is_final for h in hyps]
    assert kinds.count(True) == 1 and kinds[-1] is True
    partials = [h for h in hyps if not h.is_final]
    assert len(partials) >= 3
    # A partial is sent only when its text changed.
    assert all(a.text != b.text for a, b in itertools.pairwise(partials))
    assert errors_against(WEATHER, hyps) <= 2


async def test_word_timings_lie_inside_the_speech(processes: PocketsphinxRecognizer) -> None:
    (utterance,) = TRANSCRIPTS[WEATHER]["utterances"]
    final = next(h for h in await transcribe(processes, load_clip(WEATHER)) if h.is_final)
    words = final.words
    assert len(words) >= 10
    for w in words:
        assert w.start_ms < w.end_ms
    for a, b in itertools.pairwise(words):
        assert a.end_ms <= b.start_ms
    # Frame granularity is 10 ms; the decoder may start a word on the last frames of the preceding quiet.
    assert abs(words[0].start_ms - utterance["start_ms"]) <= 100
    assert abs(words[-1].end_ms - utterance["end_ms"]) <= 150
    assert (final.start_ms, final.end_ms) == (words[0].start_ms, words[-1].end_ms)


async def test_endpointing_splits_two_sentences(processes: PocketsphinxRecognizer) -> None:
    first, second = TRANSCRIPTS[TWO]["utterances"]
    pcm = load_clip(TWO)
    session = await processes.open()
    try:
        fed: list[Hypothesis] = []
        for i in range(0, len(pcm), 3200):
            fed += await session.feed(pcm[i : i + 3200])
        tail = await session.finish()
    finally:
        await session.aclose()
    finals = [h for h in fed + tail if h.is_final]
    assert len(finals) == 2
    # The first sentence is committed by the pause, while audio is still arriving.
    assert finals[0] in fed
    assert word_errors(first["text"], finals[0].text) <= 2
    assert word_errors(second["text"], finals[1].text) <= 2
    assert finals[0].end_ms <= first["end_ms"] + 150 < second["start_ms"] - 150 <= finals[1].start_ms


async def test_finish_keeps_the_last_words(processes: PocketsphinxRecognizer) -> None:
    (utterance,) = TRANSCRIPTS[WEATHER]["utterances"]
    # Stop 100 ms after the last word: too soon for the voice activity detector to have ended the utterance.
    pcm = load_clip(WEATHER)[: (utterance["end_ms"] + 100) * BYTES_PER_MS]
    session = await processes.open()
    try:
        fed: list[Hypothesis] = []
        for i in range(0, len(pcm), 3200):
            fed += await session.feed(pcm[i : i + 3200])
        assert not any(h.is_final for h in fed)
        tail = await session.finish()
        assert await session.finish() == []
    finally:
        await session.aclose()
        await session.aclose()
    assert [h.is_final for h in tail] == [True]
    assert word_errors(reference(WEATHER), tail[0].text) <= 2
    assert tail[0].words[-1].text == "park"


@pytest.mark.parametrize("chunk", [1600, 3200, 333 * 2])
async def test_a_stream_that_ends_in_speech_keeps_its_last_words(chunk: int) -> None:
    """Recorded human speech that runs to the last sample (issue 16): the endpointer is still in speech at EOS and
    hands back no tail, and pocketsphinx's process_raw raised IndexError on the empty buffer, losing the utterance.
    Every byte received is decoded: the last word is in the final."""
    pcm = load_human(ENDS_IN_SPEECH)
    recognizer = load_fast_pass(EngineConfig(whisper=True), mode="thread", workers=1)
    try:
        hyps = await transcribe(recognizer, pcm, chunk)
    finally:
        await recognizer.aclose()
    finals = [h for h in hyps if h.is_final]
    assert finals, "the utterance got no final"
    assert finals[-1].end_ms >= len(pcm) // BYTES_PER_MS - 300, "the audio after the endpointer's window was lost"
    assert normalise(finals_text(hyps)).split()[-1] == "man"


def test_a_stream_that_ends_in_speech_while_shedding_keeps_its_last_words() -> None:
    """The narrower search changes how an utterance is decoded, not what is kept: a session always behind real
    time, whose speech runs to the last sample, still gets every word up to the end in its final, whatever the
    chunk. (Cut from one stream for all three chunk sizes: a decoder built with its shed search costs about 1 s.)"""
    pcm = load_human(ENDS_IN_SPEECH)
    engine = _Engine(DecoderConfig.from_engine(EngineConfig()))
    for sid, chunk in enumerate([320, 1600, 8000], start=1):
        engine.open(sid, None)
        stream = engine.streams[sid]
        assert stream.pooled.sheds
        hyps: list[Hypothesis] = []
        searches: set[str] = set()
        try:
            for i in range(0, len(pcm), chunk):
                hyps += engine.feed(sid, pcm[i : i + chunk], 1000.0)[0]
                if stream.in_utt:
                    searches.add(stream.decoder.current_search())
            tail, _, shed = engine.finish(sid)
        finally:
            engine.close(sid)
        finals = [h for h in hyps + tail if h.is_final]
        assert searches == {SHED} and shed >= 1, (chunk, searches, shed)
        assert finals and finals[-1].end_ms >= len(pcm) // BYTES_PER_MS - 300, (chunk, finals)
        assert normalise(" ".join(f.text for f in finals)).split()[-1] == "man", (chunk, finals)


def test_beside_whisper_the_fast_pass_prunes_its_search_harder() -> None:
    """Its text is only the interims then (bench/fast_search.py: about 30 % less CPU for the same words): the lean
    search reaches the decoder; alone, or with LOCAL_LEAN_SEARCH=0, pocketsphinx keeps its own defaults."""
    from pocketsphinx import Decoder

    def built(config: EngineConfig) -> DecoderConfig:
        return load_fast_pass(config, mode="thread", workers=1).config  # nothing starts before open()

    lean = built(EngineConfig())
    assert lean.search == LEAN_SEARCH != FULL_SEARCH
    assert built(EngineConfig(whisper=False)).search == built(EngineConfig(lean_search=False)).search == FULL_SEARCH
    decoder = Decoder(**lean.decoder_kwargs())
    assert (
        decoder.config["maxhmmpf"],
        decoder.config["maxwpf"],
        decoder.config["topn"],
        decoder.config["pl_window"],
    ) == (LEAN_SEARCH.max_hmms, LEAN_SEARCH.max_words, LEAN_SEARCH.top_gaussians, LEAN_SEARCH.lookahead_frames)


def test_a_session_behind_real_time_is_decoded_with_the_narrower_search_until_it_catches_up() -> None:
    """Issue 16: the fast pass keeps real time and sheds quality. On a slow host four sessions at 10 dB SNR needed
    more of the two cores than there were, and their interims ran 4.7 s behind (p95). While a session's audio is
    behind real time (`shed_after_ms`), each utterance it begins is decoded with the narrower search (half the CPU
    at 10 dB: bench/README.md "Load shedding"); once it has caught up (here at once: no hold), with its own
    again."""
    config = DecoderConfig.from_engine(EngineConfig())
    assert config.shed_after_ms == 400 and config.shed_search.max_hmms < config.search.max_hmms
    engine = _Engine(dataclasses.replace(config, shed_hold_ms=0))
    engine.open(1, None)
    stream = engine.streams[1]
    own = stream.decoder.current_search()
    clips = HUMAN_CLIPS[:4]
    behind = [0.0, 1000.0, 0.0, 0.0]  # the server's word before each feed: the second clip's audio is behind
    searches: list[list[str]] = [[] for _ in clips]  # per clip, the search each utterance begun in it ran
    begun: dict[int, str] = {}  # each utterance's start (ms) and its search
    finals: list[Hypothesis] = []
    shed = 0
    try:
        for index, name in enumerate(clips):
            pcm = bytes(1000 * BYTES_PER_MS) + load_human(name)
            for i in range(0, len(pcm), 1600):
                hyps, _, shed = engine.feed(1, pcm[i : i + 1600], behind[index])
                finals += [h for h in hyps if h.is_final and h.words]
                if stream.in_utt and stream.utt_start_ms not in begun:
                    begun[stream.utt_start_ms] = stream.decoder.current_search()
                    searches[index].append(begun[stream.utt_start_ms])
        engine.finish(1)
    finally:
        engine.close(1)
    assert all(searches), searches
    assert set(searches[0]) == {own} != {SHED}
    assert set(searches[1]) == {SHED}, searches
    assert set(searches[2]) == set(searches[3]) == {own}, searches
    assert shed == sum(s.count(SHED) for s in searches)
    # The narrower search still hears the speech: its utterances' finals have the words.
    heard = [f.text for f in finals if begun[max(t for t in begun if t <= f.start_ms)] == SHED]
    assert word_errors(human_reference(clips[1]), heard[0]) <= 3, heard
    # Its pruning was put back after the second search was made: the decoder's own search is the lean one.
    assert (stream.decoder.config["maxhmmpf"], stream.decoder.config["maxwpf"]) == (
        LEAN_SEARCH.max_hmms,
        LEAN_SEARCH.max_words,
    )


def test_a_session_that_caught_up_sheds_on_for_the_hold() -> None:
    """The search can only change between utterances, so a session back to its own search the moment it caught
    up would fall behind again within the next one: it keeps the narrower search for the utterances it begins
    within `shed_hold_ms` of audio after it was last behind."""
    hold_frames = 6000 // 30
    engine = _Engine(dataclasses.replace(DecoderConfig.from_engine(EngineConfig()), shed_hold_ms=6000))
    engine.open(1, None)
    stream = engine.streams[1]
    begun: list[tuple[int, str]] = []  # each utterance: the frames fed when it began, its search
    starts: set[int] = set()
    caught_up = 0  # the frames fed when the audio was last behind
    try:
        for index, name in enumerate(HUMAN_CLIPS[:5]):
            pcm = bytes(1000 * BYTES_PER_MS) + load_human(name)
            for i in range(0, len(pcm), 1600):
                engine.feed(1, pcm[i : i + 1600], 1000.0 if index == 0 else 0.0)  # only the first clip was behind
                if stream.in_utt and stream.utt_start_ms not in starts:
                    starts.add(stream.utt_start_ms)
                    begun.append((stream.frames_in, stream.decoder.current_search()))
            if index == 0:
                caught_up = stream.frames_in
    finally:
        engine.close(1)
    # A 50 ms feed holds at most two 30 ms frames, so the frames fed when an utterance is seen are that close.
    assert any(frames <= caught_up for frames, _ in begun), begun
    assert all(search == SHED for frames, search in begun if frames < caught_up + hold_frames - 2), begun
    held = [search for frames, search in begun if caught_up < frames < caught_up + hold_frames - 2]
    assert held, "no utterance began within the hold"
    after = [search for frames, search in begun if frames >= caught_up + hold_frames + 2]
    assert after and SHED not in after, begun


def test_a_cold_decoder_behind_real_time_does_not_decode_its_first_utterance_twice() -> None:
    """A cold decoder (no cepstral mean yet) decodes its first utterance a second time at its end, with the mean the
    first decode gave, for better words: a session behind real time sheds that second decode too, and its decoder is
    warm all the same afterwards."""
    pcm = bytes(500 * BYTES_PER_MS) + load_human(HUMAN_CLIPS[0])
    for behind, twice in [(0.0, True), (1000.0, False)]:
        engine = _Engine(DecoderConfig.from_engine(EngineConfig()))
        engine.open(1, None)
        stream = engine.streams[1]
        assert not stream.pooled.warm
        kept: bool | None = None  # is the first utterance's audio kept for a second decode
        finals: list[Hypothesis] = []
        try:
            for i in range(0, len(pcm), 1600):
                finals += [h for h in engine.feed(1, pcm[i : i + 1600], behind)[0] if h.is_final]
                if stream.in_utt and kept is None:
                    kept = stream.utt_audio is not None
            finals += engine.finish(1)[0]
        finally:
            engine.close(1)
        assert kept is twice, (behind, kept)
        assert stream.pooled.warm and stream.cmn is not None
        # Heard all the same (measured: 5 of 22 words wrong decoded twice, 7 shed and once; none heard: 22).
        assert word_errors(human_reference(HUMAN_CLIPS[0]), " ".join(f.text for f in finals)) <= 9, finals


def test_the_stall_of_a_cold_decoders_second_decode_is_not_a_reason_to_shed() -> None:
    """A cold decoder's second decode of its first utterance holds back the audio of every stream on its worker,
    once, by as long as it took: the lateness that follows is not for want of CPU (it made a lone newcomer's first
    session shed 2-4 utterances: bench/README.md "Load shedding"). Each stream open then owes that much, not counted
    toward shedding and forgiven as it catches up, and does not start a second decode of its own while it owes
    (cold sessions opened together would stall the worker in turn); falling further behind than the debt sheds."""
    config = DecoderConfig.from_engine(EngineConfig())
    engine = _Engine(config)
    engine.open(1, None)
    engine.open(2, None)
    built = engine.stalled_ms  # the decoders' builds (the test above); stream 1 pays its part at its first feed
    one, two = engine.streams[1], engine.streams[2]
    speech = bytes(500 * BYTES_PER_MS) + load_human(HUMAN_CLIPS[0]) + bytes(1000 * BYTES_PER_MS)
    try:
        for i in range(0, len(speech), 1600):
            engine.feed(1, speech[i : i + 1600], 0.0)
            if engine.stalled_ms > built:
                break  # the first utterance ended, decoded twice
        debt = engine.stalled_ms - built
        assert debt > 0 and one.redecoded_ms == 0.0
        engine.open(3, None)  # after the stall: it owes nothing (stream 2 owes its build too)
        owed = engine.stalled_ms - built
        # As late as the stalls and a little: not shedding, and no second decode of its own while it owes.
        kept: bool | None = None
        for i in range(0, len(speech), 1600):
            engine.feed(2, speech[i : i + 1600], owed + config.shed_after_ms - 1)
            if two.in_utt and kept is None:
                kept = two.utt_audio is not None
        assert two.stall_debt_ms == owed and two.shed_until == 0 and kept is False
        assert engine.stalled_ms == built + owed and two.pooled.warm
        engine.feed(2, bytes(1600), 0.0)  # caught up: the debt is paid
        engine.feed(2, bytes(1600), config.shed_after_ms + 50.0)
        assert two.stall_debt_ms == 0.0 and two.shed_until > 0
        engine.feed(3, bytes(1600), config.shed_after_ms + 50.0)
        assert engine.streams[3].shed_until > 0
        engine.feed(1, bytes(1600), owed + config.shed_after_ms + 50.0)  # further behind than the stalls
        assert one.shed_until > 0
    finally:
        for sid in (1, 2, 3):
            engine.close(sid)


def test_a_decoder_built_for_a_newcomer_is_not_a_reason_for_the_others_to_shed() -> None:
    """Building a decoder (0.3-0.6 s with its narrower search) for a new session holds back the audio of every
    stream already on the worker, once: like a second decode, a stall they owe, not a lack of CPU (six sessions
    opened together made the first ones shed). A decoder taken from the idle pool costs nothing; the newcomer owes
    nothing, its audio came after."""
    config = DecoderConfig.from_engine(EngineConfig())
    engine = _Engine(config)
    engine.warm()  # a build before any stream: nobody owes it
    try:
        before = engine.stalled_ms
        engine.open(1, None)  # the warmed decoder: no build
        assert engine.stalled_ms == before
        engine.open(2, None)  # the pool is empty: a build
        built = engine.stalled_ms - before
        assert built > 0
        one, two = engine.streams[1], engine.streams[2]
        engine.feed(1, bytes(1600), built + config.shed_after_ms - 1)  # as late as the build and a little
        assert one.stall_debt_ms == built and one.shed_until == 0
        engine.feed(2, bytes(1600), config.shed_after_ms + 50.0)  # its own lateness sheds
        assert two.stall_debt_ms == 0.0 and two.shed_until > 0
        engine.close(2)
        engine.open(3, None)  # the decoder closed went back to the pool: no build
        assert engine.stalled_ms == before + built
    finally:
        for sid in (1, 2, 3):
            engine.close(sid)


@pytest.mark.parametrize("whisper", [True, False], ids=["beside-whisper", "alone"])
def test_an_utterance_that_runs_on_is_cut_at_a_pause_between_words(whisper: bool) -> None:
    """In steady noise the Endpointer can hear speech without end (43 and 56 s utterances at 10 dB SNR on the
    held-out recordings), and no final comes for as long. Past `max_utterance_ms` the utterance ends at the
    decoder's next pause between words (at twice that wherever it is), and a new one begins there: finals keep
    coming, in order, and the cuts lose next to nothing. Here the Endpointer that calls the most audio speech (VAD
    mode 0) on the Austen reading twice over (49 s, pauses of about 0.2 s) makes utterances of up to 16 s; both
    windows the engine uses (0.12 s beside Whisper, 0.3 s alone: the cut is where the Endpointer has got to, a
    window behind the newest frame)."""
    base = dataclasses.replace(DecoderConfig.from_engine(EngineConfig(whisper=whisper)), vad_mode=0)
    pcm = bytes(500 * BYTES_PER_MS) + load_human(READING) * 2 + bytes(500 * BYTES_PER_MS)
    reference = f"{human_reference(READING)} {human_reference(READING)}"
    limit_ms = 5000

    def finals(limit: int) -> tuple[list[Hypothesis], list[int]]:
        """The finals, and where each cut was (ms)."""
        engine = _Engine(dataclasses.replace(base, max_utterance_ms=limit))
        engine.open(1, None)
        stream = engine.streams[1]
        out: list[Hypothesis] = []
        cuts: list[int] = []
        try:
            for i in range(0, len(pcm), 1600):
                new = [h for h in engine.feed(1, pcm[i : i + 1600])[0] if h.is_final]
                out += new
                if stream.in_utt:
                    # Every frame in is decoded by the end of a feed, after a cut as at an endpoint's start (so the
                    # head of the next frame comes after them, and finish() finds nothing left undecoded).
                    assert stream.decoded_until == stream.frames_in
                    if new:
                        cuts.append(stream.utt_end * 30)
            return out + engine.finish(1)[0], cuts
        finally:
            engine.close(1)

    (uncut, _), (cut, cuts) = finals(0), finals(limit_ms)
    assert max(h.end_ms - h.start_ms for h in uncut) > 2 * limit_ms  # what the limit is for
    assert len(cut) > len(uncut) and cuts
    # Each utterance ends by twice the limit, a kept word's end aside (the preroll reaches back 400 ms).
    assert all(h.end_ms - h.start_ms <= 2 * limit_ms + 1000 for h in cut), [(h.start_ms, h.end_ms) for h in cut]
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(cut))  # in order, none overlapping
    # A cut before twice the limit falls in a pause: the final it ends has no word past it.
    for at in cuts:
        ended = next(h for h in cut if h.end_ms <= at + 1000 and h.end_ms >= at - 2 * limit_ms)
        assert ended.end_ms <= at or ended.end_ms - ended.start_ms >= 2 * limit_ms - 1000, (at, ended)
    # The words as good within a few (measured beside Whisper: 35 wrong of 142 uncut, 37 with a 10 s limit).
    assert word_errors(reference, finals_text(cut)) <= word_errors(reference, finals_text(uncut)) + 6


@pytest.mark.parametrize("chunk_ms", [50, 20])
def test_an_utterance_ends_where_a_detector_beside_the_decoder_heard_a_pause(chunk_ms: int) -> None:
    """types.EndsAtPauses. In steady noise the Endpointer hears speech go on through the speaker's pauses: six
    human clips 1 s apart at 5 dB SNR are one utterance to it, cut only every 10 s (`max_utterance_ms`), so finals
    run across the pauses. Told that a detector heard no speech since a moment the utterance in progress began
    before (here: half a second into each pause, from the clip's end), the stream ends that utterance at its next
    whole frame (in 20 ms chunks, one feed in three completes none), where the Endpointer has got to, and begins the
    next one there: no final spans a pause, every frame is decoded, the words as good; told again of the same
    pause, it ends nothing more."""
    clips = HUMAN_CLIPS[:6]
    gap = bytes(1000 * BYTES_PER_MS)
    pcm = with_noise(gap + gap.join(load_human(name) for name in clips) + gap, 5, 1)
    spans, at = [], 1000
    for name in clips:
        spans.append((at, at + len(load_human(name)) // BYTES_PER_MS))
        at = spans[-1][1] + 1000
    chunk = chunk_ms * BYTES_PER_MS
    # The first feed half a second into each pause.
    told = {-(-(end + 500) // chunk_ms) * chunk_ms: end for _, end in spans}

    def finals(tell: bool) -> list[Hypothesis]:
        engine = _Engine(DecoderConfig.from_engine(EngineConfig()))
        engine.open(1, None)
        stream = engine.streams[1]
        out: list[Hypothesis] = []
        waiting: int | None = None  # told of a pause the utterance in progress began before: its final is due
        lag: set[int] = set()  # frames in less the Endpointer's frames counted, in each utterance
        again: int | None = None  # the pause an utterance was just ended at, told again with the next feed
        try:
            for i in range(0, len(pcm), chunk):
                quiet_from = told.get(i // BYTES_PER_MS) if tell else None
                told_again, again_from, again = again is not None, again, None
                if again_from is not None:
                    quiet_from = again_from
                if quiet_from is not None and stream.in_utt and stream.utt_start_ms < quiet_from:
                    waiting = quiet_from
                frames_in = stream.frames_in
                new = [h for h in engine.feed(1, pcm[i : i + chunk], 0.0, quiet_from)[0] if h.is_final]
                out += new
                if stream.in_utt:
                    assert stream.decoded_until == stream.frames_in
                    lag.add(stream.frames_in - stream.next_out)
                if told_again:
                    assert not new
                if waiting is not None and stream.frames_in > frames_in:
                    # The next whole frame ended it, with its words begun before the cut; the next utterance began
                    # after the pause's start, so the same word again ends nothing.
                    assert new and all(w.start_ms < stream.utt_end * 30 for w in new[-1].words)
                    assert stream.in_utt and stream.utt_start_ms > waiting
                    again, waiting = waiting, None
            # The count of the Endpointer's frames stays a window behind the newest frame, across cuts too.
            assert len(lag) == 1, lag
            return out + engine.finish(1)[0]
        finally:
            engine.close(1)

    def spanning(hyps: list[Hypothesis]) -> list[tuple[int, int]]:
        """The finals with words in more than one clip."""
        return [(h.start_ms, h.end_ms) for h in hyps if sum(h.start_ms < hi and lo < h.end_ms for lo, hi in spans) > 1]

    uncut, cut = finals(False), finals(True)
    assert spanning(uncut)  # what it is for
    assert not spanning(cut) and len(cut) >= len(clips)
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(cut))  # in order, none overlapping
    reference = " ".join(human_reference(name) for name in clips)
    assert word_errors(reference, finals_text(cut)) <= word_errors(reference, finals_text(uncut)) + 3


def test_a_cut_past_which_a_kept_word_runs_leaves_the_endpointer_s_count_where_it_was() -> None:
    """A cut can fall inside a word the final keeps (its start before the cut): the next utterance then decodes
    from that word's end (`floor`), past the cut, but the count of the frames the Endpointer has handed back must
    stay where the Endpointer is, a window behind the newest frame, or the next utterance's end (and what its final
    keeps) is placed late. Here cuts every second of the Austen reading, mid-speech (VAD mode 0)."""
    config = dataclasses.replace(DecoderConfig.from_engine(EngineConfig()), vad_mode=0)
    pcm = bytes(500 * BYTES_PER_MS) + load_human(READING) + bytes(500 * BYTES_PER_MS)
    engine = _Engine(config)
    engine.open(1, None)
    stream = engine.streams[1]
    lag: set[int] = set()
    past_the_cut = 0
    try:
        for i in range(0, len(pcm), 1600):
            fed_ms = i // BYTES_PER_MS
            quiet_from = fed_ms - 300 if fed_ms % 1000 == 0 else None
            finals = [h for h in engine.feed(1, pcm[i : i + 1600], 0.0, quiet_from)[0] if h.is_final]
            if stream.in_utt:
                lag.add(stream.frames_in - stream.next_out)
            past_the_cut += bool(quiet_from is not None and finals and stream.floor > stream.utt_end)
    finally:
        engine.close(1)
    assert past_the_cut >= 3  # what it is about
    assert len(lag) == 1, lag


async def test_the_fast_pass_session_passes_the_word_of_a_pause_to_its_stream() -> None:
    """PocketsphinxSession.end_at_pause reaches the stream with the next feed: told at every feed that the
    detector heard a pause half a second back, the fast pass ends its utterances far more often."""
    config = dataclasses.replace(DecoderConfig.from_engine(EngineConfig()), vad_mode=0)
    pcm = load_human(READING)[: 10_000 * BYTES_PER_MS]

    async def count_finals(tell: bool) -> int:
        recognizer = PocketsphinxRecognizer(config, mode="thread", workers=1)
        try:
            session = await recognizer.open()
            assert isinstance(session, EndsAtPauses)
            finals = 0
            for i in range(0, len(pcm), 1600):
                if tell:
                    session.end_at_pause(i // BYTES_PER_MS - 500)
                finals += sum(h.is_final for h in await session.feed(pcm[i : i + 1600]))
            finals += sum(h.is_final for h in await session.finish())
            await session.aclose()
            return finals
        finally:
            await recognizer.aclose()

    assert await count_finals(True) > 2 * await count_finals(False)


@pytest.mark.parametrize("config", [DecoderConfig(shed_after_ms=0), DecoderConfig(jsgf=str(GRAMMAR))])
def test_no_narrower_search_when_shedding_is_off_or_for_a_grammar(config: DecoderConfig) -> None:
    """LOCAL_SHED_AFTER_MS=0 turns it off; a grammar's search is small already and has no language model to
    share, so its decoder keeps the one search however far behind the audio is."""
    engine = _Engine(config)
    engine.open(1, None)
    try:
        stream = engine.streams[1]
        assert not stream.pooled.sheds
        pcm = load_human(HUMAN_CLIPS[0])
        shed = 0
        for i in range(0, len(pcm), 1600):
            shed = engine.feed(1, pcm[i : i + 1600], 5000.0)[2]
        assert shed == 0 and stream.decoder.current_search() == stream.pooled.search
    finally:
        engine.close(1)


async def test_the_recognizer_counts_what_its_sessions_shed_and_says_so() -> None:
    """What /metrics reports (stt_engine_shed_utterances_total): the recognizer hears the utterances each session
    began with the narrower search, once each, from the worker process that decoded them; one whose audio was
    always behind shed every utterance it began, so at least one per final."""
    told: list[int] = []
    recognizer = load_fast_pass(EngineConfig(), workers=1)
    recognizer.on_shed = told.append
    finals: list[Hypothesis] = []
    try:
        session = await recognizer.open()
        pcm = b"".join(bytes(500 * BYTES_PER_MS) + load_human(name) for name in HUMAN_CLIPS[1:3])
        for i in range(0, len(pcm), 1600):
            session.behind(2000.0)
            finals += [h for h in await session.feed(pcm[i : i + 1600]) if h.is_final]
        finals += [h for h in await session.finish() if h.is_final]
        await session.aclose()
    finally:
        await recognizer.aclose()
    assert len(finals) >= 2 and told
    assert sum(told) == recognizer.shed_utterances >= len(finals)


def test_the_narrower_search_keeps_fewer_hmms_active(capfd: pytest.CaptureFixture[str]) -> None:
    """It is narrower, not merely another search: pocketsphinx's own count of the channels (HMMs) it searched per
    10 ms frame, over the same noisy audio (10 dB SNR, where it is dearest), is far lower with it. Measured: 5914
    against 2784 a frame, the lean search keeping 4000 HMMs and the narrower one 1000."""
    import pocketsphinx

    config = dataclasses.replace(DecoderConfig.from_engine(EngineConfig()), loglevel="INFO")
    decoder = _build_decoder(config).decoder
    pcm = with_noise(b"".join(load_human(name) for name in HUMAN_CLIPS[:3]), 10, seed=0)
    per_frame: dict[str, int] = {}
    try:
        for search in (decoder.current_search(), SHED):
            capfd.readouterr()
            decoder.activate_search(search)
            decoder.start_utt()
            decoder.process_raw(pcm)
            decoder.end_utt()
            # The first pass's line (a rescoring pass, were it on, prints its own without the ", N 1st" part).
            found = re.findall(r"channels searched \((\d+)/fr\), \d+ 1st", capfd.readouterr().err)
            assert len(found) == 1, found
            per_frame[search] = int(found[0])
    finally:
        pocketsphinx.set_loglevel("FATAL")  # the level is the process's: the decoders after this one stay quiet
    lean, shed = per_frame.values()
    assert shed < 0.7 * lean, per_frame


def test_beside_whisper_the_word_search_keeps_close_behind_the_audio() -> None:
    """pocketsphinx's word search runs its phone loop's lookahead (`-pl_window`) behind the audio, and every partial
    text with it: beside Whisper it looks one 10 ms frame ahead, not five. Measured on four human clips in 50 ms
    chunks, the end of a partial's newest segment (a word or a silence) lies 70-90 ms behind the audio fed (the
    front end's analysis window and deltas take the rest); with pocketsphinx's default five frames, 110-120 ms."""
    from pocketsphinx import Decoder

    config = load_fast_pass(EngineConfig(), mode="thread", workers=1).config
    decoder = Decoder(**config.decoder_kwargs())
    behind_ms: list[int] = []
    for name in HUMAN_CLIPS[:4]:
        pcm = load_human(name)
        decoder.start_utt()
        for offset in range(0, len(pcm), 50 * BYTES_PER_MS):
            decoder.process_raw(pcm[offset : offset + 50 * BYTES_PER_MS])
            decoder.hyp()  # the partial look the engine makes; seg() then walks the same path
            # Every segment, silences and fillers too: the newest one's end is how far the word search has got.
            ends = [seg.end_frame + 1 for seg in decoder.seg() or []]
            if ends:
                fed_ms = min(offset + 50 * BYTES_PER_MS, len(pcm)) // BYTES_PER_MS
                behind_ms.append(fed_ms - max(ends) * DECODER_FRAME_MS)
        decoder.end_utt()
    assert len(behind_ms) > 100
    assert max(behind_ms) <= 90


async def test_chunk_size_does_not_change_the_finals() -> None:
    """The audio is re-framed into the Endpointer's 30 ms frames, so the decoder sees the same frames whatever
    the chunking: finals are identical, word timings included (partials differ in number)."""
    pcm = load_clip(TWO)
    finals = []
    for chunk in (128, 3200):
        recognizer = PocketsphinxRecognizer(mode="thread", workers=1)
        try:
            hyps = await transcribe(recognizer, pcm, chunk)
        finally:
            await recognizer.aclose()
        finals.append([h for h in hyps if h.is_final])
    assert len(finals[0]) == 2
    assert finals[0] == finals[1]


async def test_concurrent_sessions_keep_their_own_words(processes: PocketsphinxRecognizer) -> None:
    weather, station = await asyncio.gather(
        transcribe(processes, load_clip(WEATHER)), transcribe(processes, load_clip(STATION))
    )
    assert errors_against(WEATHER, weather) <= 2
    assert errors_against(STATION, station) <= 2
    assert errors_against(STATION, weather) >= 8
    assert errors_against(WEATHER, station) >= 8


async def test_max_sessions_bound() -> None:
    recognizer = PocketsphinxRecognizer(mode="thread", max_sessions=1)
    try:
        first = await recognizer.open()
        with pytest.raises(RecognizerBusy, match="all 1 local recognizer sessions are busy"):
            await recognizer.open()
        await first.aclose()
        await first.aclose()
        second = await recognizer.open()
        assert recognizer.active == 1
        await second.aclose()
        assert recognizer.active == 0
    finally:
        await recognizer.aclose()


async def test_a_new_session_is_refused_while_an_open_one_is_behind_real_time() -> None:
    """Admission by measured capacity (issue 16): while a session has stayed `admit_behind_ms` behind real time for
    LATENESS_SUSTAINED_S, the cores cannot carry another; a newcomer is told to try again rather than push every
    session further behind. A blip shorter than that refuses no one; a word older than LATENESS_FRESH_S (a session
    that stopped sending) no longer counts, and one that sends again after that starts over; a closed session's
    does not count either."""
    now = [0.0]
    recognizer = PocketsphinxRecognizer(mode="thread", max_sessions=4, admit_behind_ms=2000, clock=lambda: now[0])
    try:
        first = await recognizer.open()
        first.behind(1900.0)  # keeping up, just: admitted
        second = await recognizer.open()
        second.behind(2500.0)  # just now: a blip so far
        assert recognizer.behind_ms() == 0.0
        now[0] += LATENESS_SUSTAINED_S / 2
        second.behind(1500.0)  # caught up: the blip is over
        now[0] += LATENESS_SUSTAINED_S
        second.behind(2200.0)
        assert recognizer.behind_ms() == 0.0
        now[0] += LATENESS_SUSTAINED_S
        second.behind(2500.0)  # behind all along since 2200
        assert recognizer.behind_ms() == 2500.0
        with pytest.raises(RecognizerBusy, match=r"2\.5 s behind real time"):
            await recognizer.open()
        assert recognizer.active == 2
        now[0] += LATENESS_FRESH_S + 0.1  # neither has said anything since
        assert recognizer.behind_ms() == 0.0
        third = await recognizer.open()
        second.behind(3000.0)  # it sends again: a new stretch behind, not the old one's
        assert recognizer.behind_ms() == 0.0
        now[0] += LATENESS_SUSTAINED_S
        second.behind(3000.0)
        with pytest.raises(RecognizerBusy, match="behind real time"):
            await recognizer.open()
        await second.aclose()
        second.behind(9000.0)  # a word after close is not kept
        now[0] += LATENESS_SUSTAINED_S
        second.behind(9000.0)
        assert recognizer.behind_ms() == 0.0
        fourth = await recognizer.open()
        for session in (first, third, fourth):
            await session.aclose()
        assert recognizer.active == 0
    finally:
        await recognizer.aclose()


async def test_a_session_whose_feed_waits_for_its_worker_still_counts_as_behind() -> None:
    """The server's word comes before each feed; a feed that waits behind other sessions' on its worker (or
    decodes a long backlog) says nothing new however long that takes, and that is when the engine is most
    overloaded: the word stays fresh until the feed is done."""
    now = [0.0]
    recognizer = PocketsphinxRecognizer(
        mode="thread", max_sessions=3, workers=1, admit_behind_ms=2000, clock=lambda: now[0]
    )
    gate = threading.Event()
    try:
        session = await recognizer.open()
        session.behind(2500.0)
        now[0] += LATENESS_SUSTAINED_S
        session.behind(2600.0)
        # The worker's only thread is taken, as by another session's long feed: this feed waits.
        blocker = asyncio.get_running_loop().run_in_executor(recognizer._executors[0], gate.wait)
        feed = asyncio.create_task(session.feed(bytes(3200)))
        await asyncio.sleep(0.05)
        now[0] += 10 * LATENESS_FRESH_S
        assert not feed.done() and recognizer.behind_ms() == 2600.0
        # An open admitted by mistake would wait on the blocked worker (and a cancelled call waits out its job):
        # the gate opens by itself after 5 s, so that fails rather than hangs.
        asyncio.get_running_loop().call_later(5, gate.set)
        with pytest.raises(RecognizerBusy, match="behind real time"):
            await recognizer.open()
        gate.set()
        await blocker
        await feed
        assert recognizer.behind_ms() == 2600.0  # the feed just ended: as fresh as a word
        now[0] += LATENESS_FRESH_S + 0.1
        assert recognizer.behind_ms() == 0.0
        await session.aclose()
    finally:
        gate.set()
        await recognizer.aclose()


async def test_admission_by_lateness_off() -> None:
    now = [0.0]
    off = PocketsphinxRecognizer(mode="thread", max_sessions=2, admit_behind_ms=0, clock=lambda: now[0])
    try:
        behind = await off.open()
        behind.behind(60_000.0)
        now[0] += LATENESS_SUSTAINED_S
        behind.behind(60_000.0)
        await (await off.open()).aclose()
        await behind.aclose()
    finally:
        await off.aclose()
    with pytest.raises(ValueError, match="admit_behind_ms"):
        PocketsphinxRecognizer(mode="thread", admit_behind_ms=-1)


async def test_grammar_recognizes_a_command() -> None:
    recognizer = PocketsphinxRecognizer(DecoderConfig(jsgf=str(GRAMMAR)), mode="thread")
    try:
        hyps = await transcribe(recognizer, load_clip("slt-command-16k.wav"))
    finally:
        await recognizer.aclose()
    assert [h.text for h in hyps if h.is_final] == ["turn on the kitchen lights"]


async def test_event_loop_keeps_ticking_while_decoding(processes: PocketsphinxRecognizer) -> None:
    """Counted, not timed: while each whole-clip feed() is awaited, another task on the same loop keeps getting
    turns. A decode on the loop would give it none until the feed returned, however fast or slow the machine."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    async def decode(name: str) -> tuple[list[Hypothesis], int]:
        session = await processes.open()
        try:
            before = ticks
            # The whole clip in one call: with decoding on the loop this would hold it for the whole decode.
            hyps = await session.feed(load_clip(name))
            turns = ticks - before
            return hyps + await session.finish(), turns
        finally:
            await session.aclose()

    tick = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(decode(name) for name in (WEATHER, STATION, TWO)))
    finally:
        done.set()
        await tick
    assert all(finals_text(hyps) for hyps, _ in results)
    assert all(turns >= 1 for _, turns in results), [turns for _, turns in results]


def test_partials_thin_out_when_a_worker_carries_more_than_two_streams() -> None:
    """Looking at the partial text every 50 ms cost as much CPU as decoding (RTF 0.28 against 0.15 without, human
    clips in 50 ms frames): with 8 sessions on 2 cores the fast pass fell 3 s behind. A worker with more streams
    looks less often, so it keeps real time."""
    engine = _Engine(DecoderConfig(partial_every_ms=50))
    got = []
    for count in (1, 2, 3, 4, 5):
        engine.streams = dict.fromkeys(range(count))  # type: ignore[arg-type]  # only their number counts here
        got.append(engine.partial_every_ms())
    assert got == [50, 50, 100, 100, 150]


def test_inside_an_utterance_the_decoder_keeps_up_with_the_audio() -> None:
    """The Endpointer hands frames back a window (120 ms beside Whisper) late. Inside an utterance each frame is
    decoded as it arrives instead, so the partial text reaches the newest audio: after every feed the decoder has
    seen every byte received, the head of a 30 ms frame not yet whole included. The window after an utterance's
    end is decoded with it; when speech comes back within it, the next utterance decodes those frames again, and
    no word is in two finals or lost."""
    engine = _Engine(DecoderConfig.from_engine(EngineConfig(whisper=True)))
    engine.open(1, None)
    stream = engine.streams[1]
    clips = [READING, "cards-002.wav"]  # the reading's pauses: some end an utterance with speech straight after
    pcm = bytes(500 * BYTES_PER_MS) + b"".join(load_human(c) for c in clips)
    fed_ms = behind_ms = 0
    ahead_ms = -1_000_000  # the most the decoder was ever ahead of the audio received: a byte decoded twice
    starts: list[int] = []
    reached_back = 0  # utterances whose first frames the one before had decoded after its end
    decoded_to = 0
    finals: list[Hypothesis] = []
    try:
        for i in range(0, len(pcm), 1600):
            hyps, _, _ = engine.feed(1, pcm[i : i + 1600])
            if any(h.is_final for h in hyps):
                decoded_to = stream.decoded_until * 30  # the ended utterance read this far
            finals += [h for h in hyps if h.is_final]
            fed_ms += 50
            if stream.in_utt:
                if stream.utt_start_ms not in starts:
                    starts.append(stream.utt_start_ms)
                    reached_back += stream.utt_start_ms < decoded_to
                decoded_ms = stream.utt_start_ms + stream.decoder.n_frames() * DECODER_FRAME_MS
                behind_ms = max(behind_ms, fed_ms - decoded_ms)
                ahead_ms = max(ahead_ms, decoded_ms - fed_ms)
        finals += engine.finish(1)[0]
    finally:
        engine.close(1)
    assert len(starts) >= 3 and reached_back >= 1, (starts, reached_back)
    # What is left (measured 40 ms): the frames pocketsphinx's features hold back for their deltas. 60-80 ms when
    # the decoder waited for a whole 30 ms frame, 170 ms when it took the Endpointer's frames.
    assert behind_ms <= 50, behind_ms
    assert ahead_ms < 0, ahead_ms
    words = [w for h in finals for w in h.words]
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(words)), "a word was decoded in two finals"
    reference = " ".join(human_reference(c) for c in clips)
    # The fast pass alone gets about a fifth of human words wrong (bench/README.md); lost words would add to it.
    assert word_errors(reference, finals_text(finals)) <= 0.3 * len(reference.split())


@pytest.mark.parametrize("chunk_ms", [20, 30, 50, 100])
def test_the_partial_text_is_looked_at_every_50_ms_of_speech_whatever_the_chunk(chunk_ms: int) -> None:
    """A look costs about as much as decoding, so it has a pace (`partial_every_ms`, 50 ms): chunks that do not
    divide it carry the remainder to the next look (20 ms chunks looked every 60 ms, 30 ms ones every 60: those
    cases fail without it), and chunks as long as it or longer get one look each (those cases guard the pace)."""
    from pocketsphinx import Decoder

    class CountingLooks:
        def __init__(self, decoder: Any) -> None:
            self.decoder = decoder
            self.looks = 0

        def hyp(self) -> Any:
            self.looks += 1
            return self.decoder.hyp()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.decoder, name)

    config = DecoderConfig.from_engine(EngineConfig())
    decoder = CountingLooks(Decoder(**config.decoder_kwargs()))
    stream = _Stream(_Pooled(decoder, warm=True, search=decoder.current_search(), sheds=False), config)
    pcm = load_human(READING)
    chunk = chunk_ms * BYTES_PER_MS
    speech_ms = 0  # audio fed inside utterances
    for offset in range(0, len(pcm) - chunk + 1, chunk):
        inside = stream.in_utt
        stream.feed(pcm[offset : offset + chunk])
        speech_ms += chunk_ms if inside and stream.in_utt else 0
    stream.release()
    expected = speech_ms / max(config.partial_every_ms, chunk_ms)
    assert speech_ms > 10_000
    assert 0.95 * expected <= decoder.looks <= 1.1 * expected + 20, (decoder.looks, expected)
