"""Speech only a loose voice detector hears (a whispered sentence): its runs, and the windows the two-pass engine
sends for them (server/engine/voice_runs.py, server/engine/twopass.py UNHEARD_PAD_MS)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.speech import human_reference, load_human, word_errors
from server.engine.accurate import AccurateBusy, AccurateScheduler
from server.engine.outcomes import UNHEARD_WARNING
from server.engine.pending import PendingFinal
from server.engine.silero import SileroDetector
from server.engine.sphinx import PocketsphinxRecognizer
from server.engine.twopass import (
    SPEECH_MIN_MS,
    SPEECH_PAD_MS,
    SPEECH_REACH_MS,
    UNHEARD_MIN_PROBABILITY,
    UNHEARD_PAD_MS,
    TwoPassRecognizer,
    TwoPassSession,
)
from server.engine.types import BYTES_PER_MS, Estimates
from server.engine.voice_runs import (
    FRAME_MS,
    RUN_MAX_MS,
    RUN_MIN_MS,
    RUN_PAUSE_MS,
    FrameRuns,
    LooseVoiceDetector,
    VoiceRun,
)
from server.transcript import Hypothesis, Word
from tests.test_twopass import (
    HELLO,
    LOOPING,
    AnsweringPass,
    AudioClock,
    BusyPass,
    EstimatingPass,
    FailingSaidPass,
    FixedPass,
    HeardSpeech,
    ListedFast,
    NeverPass,
    RaisingPass,
    SaidPass,
    Told,
    fast_final,
    finals,
    listed,
    listed_frames,
    run,
    run_at_pace,
)

PAUSE_FRAMES = RUN_PAUSE_MS // FRAME_MS
SURE_HELLO = tuple(dataclasses.replace(w, probability=0.9) for w in HELLO)  # Whisper's words, with probabilities


def reference_runs(frames: list[bool], *, finishing: bool, every: bool = False) -> list[VoiceRun]:
    """The runs by their definition: speech frames joined across gaps shorter than RUN_PAUSE_MS, a run ended by such a
    gap (or by the end of a finished stream), kept when at least RUN_MIN_MS long (`every`: of any length)."""
    runs: list[VoiceRun] = []
    at = 0
    start = last = None
    for speech, group in itertools.groupby(frames):
        n = len(list(group))
        if speech:
            start = at if start is None else start
            last = at + n - 1
        elif start is not None and last is not None and n >= PAUSE_FRAMES:
            runs.append(VoiceRun(start * FRAME_MS, (last + 1) * FRAME_MS))
            start = None
        at += n
    if finishing and start is not None and last is not None:
        runs.append(VoiceRun(start * FRAME_MS, (last + 1) * FRAME_MS))
    return [r for r in runs if every or r.end_ms - r.start_ms >= RUN_MIN_MS]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(1, 60)), max_size=40),
    st.integers(1, 50),
    st.booleans(),
)
def test_runs_are_speech_between_pauses_whenever_they_are_asked_for(
    pieces: list[tuple[bool, int]], ask_every: int, finishing: bool
) -> None:
    frames = [speech for speech, n in pieces for _ in range(n)]
    runs = FrameRuns()
    got: list[VoiceRun] = []
    for i, speech in enumerate(frames):
        runs.add(speech)
        if i % ask_every == 0:
            got += runs.ended()
    every = reference_runs(frames, finishing=True, every=True)  # the open run too
    for ms in range(0, len(frames) * FRAME_MS, 20):
        assert runs.run_start(ms) == next((r.start_ms for r in every if r.start_ms <= ms < r.end_ms), None), ms
    got += runs.ended(finishing=finishing)
    assert got == reference_runs(frames, finishing=finishing)
    if finishing:
        assert runs.ended(finishing=True) == []  # each run once


def test_a_run_longer_than_run_max_ms_is_given_too() -> None:
    """A long run may hold the fast pass's speech and, after it, a whisper only this detector heard: the engine
    bounds what it sends by RUN_MAX_MS (the part no pass heard), not the runs."""
    runs = FrameRuns()
    speech_frames = RUN_MAX_MS // FRAME_MS + 10
    for speech in [True] * speech_frames + [False] * PAUSE_FRAMES:
        runs.add(speech)
    assert runs.ended() == [VoiceRun(0, speech_frames * FRAME_MS)]


def loose_runs(pcm: bytes, frame_ms: int) -> list[VoiceRun]:
    track = LooseVoiceDetector().open()
    got: list[VoiceRun] = []
    step = frame_ms * BYTES_PER_MS
    for at in range(0, len(pcm), step):
        track.feed(pcm[at : at + step])
        got += track.ended()
    return got + track.ended(finishing=True)


def test_the_loose_detector_hears_a_whispered_sentence_in_any_frame_size() -> None:
    """The whispered sentence (4.8 s, no voiced speech) the fast pass's endpointer calls 90 ms of speech: the loose
    detector hears it as one run, the same however the client cuts its frames (30 ms of the detector's each)."""
    pcm = bytes(16_000) + load_human("mfa-whisper2.wav") + bytes(32_000)  # 0.5 s of silence before, 1 s after
    ((start, end),) = [(r.start_ms, r.end_ms) for r in loose_runs(pcm, 30)]
    assert 400 <= start <= 1300 and 3500 <= end <= 5300 and end - start >= 2500
    for frame_ms in (10, 50, 137, 250):
        assert loose_runs(pcm, frame_ms) == [VoiceRun(start, end)], frame_ms


def test_the_loose_detector_hears_nothing_in_silence() -> None:
    track = LooseVoiceDetector().open()
    track.feed(bytes(10 * 16_000 * 2))
    assert track.ended(finishing=True) == []


class ListedRuns:
    """A loose voice detector (voice_runs.py's protocol) whose runs end once the audio reaches RUN_PAUSE_MS past
    them, or at the end of the stream. One session at a time."""

    def __init__(self, runs: list[tuple[int, int]]) -> None:
        self.all = [VoiceRun(*r) for r in runs]
        self.runs = list(self.all)
        self.fed_ms = 0

    def open(self) -> ListedRuns:
        return self

    def feed(self, pcm: bytes) -> None:
        self.fed_ms += len(pcm) // BYTES_PER_MS

    def ended(self, *, finishing: bool = False) -> list[VoiceRun]:
        out = [r for r in self.runs if finishing or r.end_ms + RUN_PAUSE_MS <= self.fed_ms]
        self.runs = [r for r in self.runs if r not in out]
        return out

    def run_start(self, at_ms: int) -> int | None:
        return next((r.start_ms for r in self.all if r.start_ms <= at_ms < min(r.end_ms, self.fed_ms)), None)


def sure(*words: tuple[str, int, int], probability: float | None = 0.9) -> tuple[Word, ...]:
    return tuple(Word(text, lo, hi, probability=probability) for text, lo, hi in words)


def two_pass(fast: Any, accurate: Any, runs: list[tuple[int, int]], **kwargs: Any) -> TwoPassRecognizer:
    return TwoPassRecognizer(fast, accurate, fallback_after_s=600, voice=ListedRuns(runs), **kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize("probability", [0.9, UNHEARD_MIN_PROBABILITY])
async def test_speech_only_the_loose_detector_heard_is_a_final_of_its_own(probability: float) -> None:
    accurate = FixedPass(tuple(dataclasses.replace(w, probability=probability) for w in HELLO))
    two = two_pass(listed(), accurate, [(1000, 3000)])
    two.observer = told = Told()
    hyps = await run(two, bytes(5000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert accurate.jobs == [(1000 - UNHEARD_PAD_MS, 2000 + 2 * UNHEARD_PAD_MS)]  # the run and its pad
    assert [h.text for h in finals(hyps)] == ["Hello, world!"]
    assert not [h for h in hyps if not h.is_final and h.words]  # no pass had interims for it
    assert (two.stats.unheard_sent, two.stats.unheard_finals) == (1, 1)
    assert told.unheard_outcomes == ["final"] and told.finals == [("", True)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer",
    [
        (),  # no speech
        (Word(".", 1500, 1500, joins_previous=True),),  # a mark is no word
        sure(("thank", 1200, 1500), ("you", 1500, 1800), probability=UNHEARD_MIN_PROBABILITY - 0.01),  # made up
        None,
    ],
)
async def test_a_run_where_whisper_hears_no_speech_it_is_sure_of_sends_nothing(answer: tuple[Word, ...] | None) -> None:
    """The loose detector hears breaths and laughs too: Whisper's doubtful words there are not sent, nor a loop
    (None here: Whisper repeating itself over noise), nor anything else (nothing was shown for the run, so nothing
    is owed)."""
    two = two_pass(listed(), RaisingPass(LOOPING) if answer is None else AnsweringPass([answer]), [(1000, 3000)])
    two.observer = told = Told()
    hyps = await run(two, bytes(5000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert hyps == []
    assert (two.stats.unheard_sent, two.stats.unheard_dropped) == (1, 1)
    assert told.unheard_outcomes == ["dropped"] and told.finals == []


@pytest.mark.anyio
@pytest.mark.parametrize("accurate", [BusyPass(), NeverPass()])
async def test_a_run_the_accurate_pass_cannot_decode_is_left_out_with_a_warning(accurate: Any) -> None:
    """Refused (the queue is full) or late: no pass has its words, and the warning says speech was left out."""
    two = TwoPassRecognizer(listed(), accurate, fallback_after_s=0.05, voice=ListedRuns([(1000, 3000)]))
    two.observer = told = Told()
    hyps = await run(two, bytes(5000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    (final,) = finals(hyps)
    assert final.words == () and final.warning == UNHEARD_WARNING
    assert two.stats.unheard_lost == 1 and told.unheard_outcomes == ["lost"]


@pytest.mark.anyio
@pytest.mark.parametrize(("greedy_s", "sent"), [(0.2, True), (2.0, False)])
async def test_a_run_whose_window_would_not_be_back_in_time_is_left_out_at_once(greedy_s: float, sent: bool) -> None:
    """Twice the pass's estimate past the run's deadline (2 s after its end, 1.5 s left when it is heard to end): the
    window is not sent, which would only hold the finals after it back, and the warning says what was left out."""
    accurate = EstimatingPass(SURE_HELLO, greedy_s=greedy_s)
    clock = AudioClock()
    two = TwoPassRecognizer(listed(), accurate, fallback_after_s=2.0, voice=ListedRuns([(1000, 3000)]), clock=clock)
    hyps = await run_at_pace(two, clock, bytes(5000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    (final,) = finals(hyps)
    assert bool(accurate.jobs) is sent
    assert (final.text, final.warning) == (("Hello, world!", "") if sent else ("", UNHEARD_WARNING))


@pytest.mark.anyio
async def test_a_run_the_fast_pass_heard_a_word_in_is_its_utterance_s() -> None:
    """The loose detector hears the fast pass's speech as well: that run goes in the utterance's window, once."""
    accurate = FixedPass(HELLO)
    fast = listed((3500, fast_final(("do", 2000, 2400), ("for", 2400, 2800))))
    two = two_pass(fast, accurate, [(1000, 3000)])
    hyps = await run(two, bytes(6000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert len(accurate.jobs) == 1 and len(finals(hyps)) == 1
    assert two.stats.unheard_sent == 0


@pytest.mark.anyio
async def test_a_run_whose_utterance_the_fast_pass_opened_and_gave_no_words_goes_as_its_own() -> None:
    """Review: the fast pass opened an utterance at the whisper's end, showed "his", then ended it with no words
    (pocketsphinx takes a shown word back so: sphinx.py `_end_utterance`). The run was taken for that utterance's
    window, which never went: the whispered sentence was in no final and nothing said so."""
    his = Hypothesis((Word("his", 2000, 2200),), False, 2000, 2200)
    fast = listed_frames(5000, {2300: [his], 3200: [Hypothesis((), True, 2000, 3000)]})
    accurate = FixedPass(SURE_HELLO)
    two = two_pass(fast, accurate, [(0, 2400)])
    hyps = await run(two, bytes(5000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [h.text for h in finals(hyps)] == ["Hello, world!"]
    assert accurate.jobs == [(0, 2400 + UNHEARD_PAD_MS)]
    assert two.stats.unheard_sent == 1


class SpyPass(AnsweringPass):
    """AnsweringPass that also keeps each job's audio span (session ms)."""

    def __init__(self, answers: list[tuple[Word, ...]]) -> None:
        super().__init__(answers)
        self.spans: list[tuple[int, int]] = []

    def submit(self, pcm: bytes, offset_ms: int, **kwargs: Any) -> asyncio.Future[tuple[Word, ...]]:
        self.spans.append((offset_ms, offset_ms + len(pcm) // BYTES_PER_MS))
        return super().submit(pcm, offset_ms, **kwargs)


class TimedSpyPass(SpyPass):
    """SpyPass that also keeps when each job was asked (the session's clock, seconds)."""

    def __init__(self, answers: list[tuple[Word, ...]], clock: AudioClock) -> None:
        super().__init__(answers)
        self.clock = clock
        self.asked_at: list[float] = []

    def submit(self, pcm: bytes, offset_ms: int, **kwargs: Any) -> asyncio.Future[tuple[Word, ...]]:
        self.asked_at.append(self.clock.now)
        return super().submit(pcm, offset_ms, **kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("run_end_ms", "sent"),
    [
        # The phrase's window ends at 3100 ms (its last word, 2800, and the 300 ms tail).
        (3100 + RUN_MIN_MS + 1200, True),  # a whisper straight after the phrase, 2 s past its window
        (3100 + RUN_MIN_MS, True),
        (3100 + RUN_MIN_MS - 30, False),  # a breath after it: shorter than any run taken alone
        (3100 + RUN_MAX_MS, True),  # the run is longer than RUN_MAX_MS, the part no pass heard is not
        (3100 + RUN_MAX_MS + 30, False),  # steady sound the detector calls speech
    ],
)
async def test_speech_only_the_loose_detector_heard_straight_after_the_fast_pass_s_is_a_final_of_its_own(
    run_end_ms: int, sent: bool
) -> None:
    """A whisper less than RUN_PAUSE_MS after voiced speech is one run with it. It was taken for the fast pass's
    speech, as the run began in it, and past the utterance's window no pass heard it: no final and no warning. Now
    the part of the run after the utterance's window goes to Whisper as a run of its own."""
    phrase = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    accurate = SpyPass([phrase, sure(("he", 3300, 3600), ("was", 3600, run_end_ms - 100))])
    fast = listed((3500, fast_final(("do", 2000, 2400), ("for", 2400, 2800))))
    two = two_pass(fast, accurate, [(2000, run_end_ms)], tail_ms=300)
    hyps = await run(two, bytes((run_end_ms + 2000) * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [h.text for h in finals(hyps)] == (["do for", "he was"] if sent else ["do for"])
    assert two.stats.unheard_sent == int(sent)
    if sent:
        (_, phrase_end_ms), (whisper_start_ms, whisper_end_ms) = accurate.spans
        assert phrase_end_ms == 2800 + 300
        # It begins where the phrase's window ends: its last word is not heard again.
        assert (whisper_start_ms, whisper_end_ms) == (phrase_end_ms, run_end_ms + UNHEARD_PAD_MS)
        first, second = finals(hyps)
        assert first.end_ms <= second.start_ms


@pytest.mark.anyio
@pytest.mark.parametrize("accurate", ["answered", "unsure", "refused"])
async def test_a_run_begun_in_the_last_window_s_tail_leaves_the_word_there_to_that_final(accurate: str) -> None:
    """Review: a run that begins after the fast pass's last word but inside its window's tail (here "he" at
    2900-3050, which the phrase's window heard in its 300 ms tail and Whisper wrote) is sent from its start, so
    the word is heard by both windows: it was in both finals. It is that final's, as between two utterances'
    windows (`repeated_head`), and Whisper's sureness is of the rest (a sure "he" made a doubtful "was" a final).
    A run left out with a warning is dated no earlier than that final's end."""
    phrase = (Word("do", 2000, 2400), Word("for", 2400, 2800), Word("he", 2900, 3050))
    second = sure(("he", 2900, 3050), ("was", 3100, 4700))
    if accurate == "unsure":
        second = (second[0], dataclasses.replace(second[1], probability=UNHEARD_MIN_PROBABILITY - 0.3))
    fast = listed((3500, fast_final(("do", 2000, 2400), ("for", 2400, 2800))))
    answers = [phrase, AccurateBusy("queue full") if accurate == "refused" else second]
    two = two_pass(fast, FailingSaidPass(answers), [(2900, 4800)], tail_ms=300)
    hyps = await run(two, bytes(7000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    first, *rest = finals(hyps)
    assert first.text == "do for he"
    if accurate == "unsure":
        assert rest == [] and two.stats.unheard_dropped == 1
        return
    (then,) = rest
    assert (then.text, then.warning) == (("was", "") if accurate == "answered" else ("", UNHEARD_WARNING))
    assert then.start_ms >= first.end_ms


_END = (3100, 5000 + UNHEARD_PAD_MS)  # what comes after the phrase's window, sent alone


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("heard", "jobs"),
    [
        # The phrase's window ends at 3100 ms (its last word, 2800, and the 300 ms tail); the run goes on to 5000.
        ([(2000, 2800)], [_END]),  # Silero heard the phrase only: the rest is no pass's
        # It heard speech soon after the window: the next window's; no utterance came, so at the end it goes alone.
        ([(2000, 2800), (3500, 4200)], [_END]),
        # ... later: the part before it goes, its window ending where the next one's reach for that speech begins;
        # the rest at the end
        ([(2000, 2800), (4500, 4500 + SPEECH_MIN_MS)], [(3100, 4500 - SPEECH_PAD_MS), (4500 - SPEECH_PAD_MS, _END[1])]),
        ([(2000, 2800), (3500, 3500 + SPEECH_MIN_MS - 32)], [_END]),  # a click is no speech
        ([(2000, 2800), (3000, 3100 + SPEECH_MIN_MS)], [_END]),  # speech going on past the window's end: as above
        ([(2000, 2800), (3000, 3100 + SPEECH_MIN_MS - 32)], [_END]),
    ],
)
async def test_the_part_of_a_run_after_a_window_stops_where_silero_heard_speech(
    heard: list[tuple[int, int]], jobs: list[tuple[int, int]]
) -> None:
    """Measured fed as fast as possible at 20 dB SNR: the loose detector heard a held-out talk's noisy speech go on
    7 s past a window, and Whisper, given that alone, was not sure of it: words dropped unsaid that the next
    utterance's window, which hears what Silero heard (`_submit`), had kept. What Silero heard is left to that
    window; the part of the run before it is sent. Here no utterance comes (the review: that speech was then in
    no final, and nothing said so): at the end of the stream it goes as its own window."""
    phrase = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    accurate = SpyPass([phrase, sure(("he", 3300, 3600), ("was", 3600, 4000)), sure(("then", 4500, 4700))])
    fast = listed((3500, fast_final(("do", 2000, 2400), ("for", 2400, 2800))))
    two = two_pass(fast, accurate, [(2000, 5000)], tail_ms=300, speech=HeardSpeech(heard))
    hyps = await run(two, bytes(7000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert accurate.spans[1:] == jobs
    assert [h.text for h in finals(hyps)][1:] == ["he was", "then"][: len(jobs)]


class EstimatingSpyPass(TimedSpyPass):
    """TimedSpyPass that says what a job costs it, so the session checks a window would be back in time."""

    def estimate_s(self, audio_ms: int) -> float:
        return 0.2

    def best_estimate_s(self, audio_ms: int) -> float:
        return 0.4


@pytest.mark.anyio
async def test_the_part_of_a_run_before_silero_s_speech_counts_its_deadline_from_the_run_s_end() -> None:
    """Review: at real-time pace the loose detector says the run (2000-7000 ms) ended only at about 7.5 s. The part
    of it after the phrase's window, cut where the next window's reach for Silero's speech (4500 ms) begins, ends at
    4000 ms; its deadline, counted from there (6 s), had passed: the whisper in it was not decoded ("no time"),
    only a warning. Counted from the run's end it is decoded, and its words are a final."""
    phrase = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    clock = AudioClock()
    accurate = EstimatingSpyPass(
        [phrase, sure(("he", 3300, 3600), ("was", 3600, 4000)), sure(("then", 4500, 4700))], clock
    )
    assert isinstance(accurate, Estimates)
    two = TwoPassRecognizer(
        listed((3500, fast_final(("do", 2000, 2400), ("for", 2400, 2800)))),
        accurate,
        fallback_after_s=2.0,
        tail_ms=300,
        voice=ListedRuns([(2000, 7000)]),
        speech=HeardSpeech([(2000, 2800), (4500, 7000)]),
        clock=clock,
    )
    hyps = await run_at_pace(two, clock, bytes(10_000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert accurate.spans[1] == (3100, 4500 - SPEECH_PAD_MS)  # the part, to 4000 ms, and its pad
    assert [h.text for h in finals(hyps)][:2] == ["do for", "he was"]
    assert not any(UNHEARD_WARNING in h.warning for h in finals(hyps))


@pytest.mark.anyio
async def test_speech_silero_heard_go_on_past_the_last_window_is_sent_when_the_stream_ends() -> None:
    """Review: what Silero heard after the last window is left to the next utterance's window; when the stream ends
    no window comes, and the speech was in no final and nothing said so. At the end it goes as a window of its own."""
    phrase = (Word("turn", 100, 500), Word("left", 550, 1000))
    accurate = SpyPass([phrase, sure(("then", 4500, 5000), ("right", 5000, 5600))])
    fast = listed((1300, fast_final(("turn", 100, 500), ("left", 550, 1000))))
    two = two_pass(fast, accurate, [(0, 6000)], tail_ms=300, speech=HeardSpeech([(0, 6000)]))
    hyps = await run(two, bytes(8000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    (_, first_end_ms), *rest = accurate.spans
    assert rest == [(first_end_ms, 6000 + UNHEARD_PAD_MS)]
    assert [h.text for h in finals(hyps)] == ["turn left", "then right"]


@pytest.mark.anyio
@pytest.mark.parametrize(("next_ms", "alone"), [(None, True), (6800, False)])
async def test_speech_left_to_the_next_window_goes_alone_when_no_utterance_comes_in_time(
    next_ms: int | None, alone: bool
) -> None:
    """At real-time pace the stream goes on: the speech Silero heard after the last window waits for the next
    utterance's window half the fallback time after it ended (here 1 s: the run is heard to end at 6510 ms, its
    speech ended at 6000), and then goes alone, not at the end of the stream. An utterance begun in time (a partial
    at 6800 ms) hears it in its own window instead."""
    phrase = (Word("turn", 100, 500), Word("left", 550, 1000))
    clock = AudioClock()
    answers = {1300: [fast_final(("turn", 100, 500), ("left", 550, 1000))]}
    if next_ms is not None:
        said = Hypothesis((Word("stop", next_ms, next_ms + 300),), False, next_ms, next_ms + 300)
        answers |= {ms: [said] for ms in range(next_ms + 100, 8000, 100)}
        answers[8000] = [fast_final(("stop", next_ms, next_ms + 600))]
    accurate = TimedSpyPass(
        [phrase, sure(("then", 4500, 5000), ("right", 5000, 5600)), sure(("stop", 6800, 7400))], clock
    )
    two = TwoPassRecognizer(
        listed_frames(20_000, answers),
        accurate,
        fallback_after_s=2.0,
        tail_ms=300,
        voice=ListedRuns([(0, 6000)]),
        speech=HeardSpeech([(0, 6000), (6800, 7400)]),
        clock=clock,
    )
    hyps = await run_at_pace(two, clock, bytes(20_000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    (_, first_end_ms), (second_start_ms, second_end_ms), *_ = accurate.spans
    if alone:
        assert (second_start_ms, second_end_ms) == (first_end_ms, 6000 + UNHEARD_PAD_MS)
        assert 7.0 <= accurate.asked_at[1] < 7.2  # 1 s after the end of its speech (the run was heard to end at 6.51 s)
        assert [h.text for h in finals(hyps)] == ["turn left", "then right"]
    else:
        assert second_start_ms <= first_end_ms and second_end_ms >= 7400  # the utterance's window hears it
        assert len(accurate.spans) == 2


async def late_utterance(accurate: SpyPass, speech: HeardSpeech) -> list[Hypothesis]:
    """10 s fed in 100 ms frames: the fast pass hears "do for" (2000-2800), then gives "then" (4500-4800) only at
    7700 ms, its final at 8500; the loose detector hears one run, 2000-7000."""
    then = Hypothesis((Word("then", 4500, 4800),), False, 4500, 4800)
    at = {3500: [fast_final(("do", 2000, 2400), ("for", 2400, 2800))], 8500: [fast_final(("then", 4500, 4800))]}
    at |= {ms: [then] for ms in range(7700, 8500, 100)}
    two = two_pass(listed_frames(10_000, at), accurate, [(2000, 7000)], tail_ms=300, speech=speech)
    return await run(two, bytes(10_000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)


@pytest.mark.anyio
async def test_speech_left_to_the_next_window_that_runs_past_it_waits_for_the_window_after() -> None:
    """Review: the fast pass gave the next utterance ("then", 4500-4800) only at 7700 ms, after the run (to 7000) had
    been heard to end, and that utterance's window ends at 5100: the speech left to it from 4300 on was taken as
    heard to 7000, and 5100-7000 was in no final. The rest waits for the next window, and at the end goes alone."""
    accurate = SpyPass(
        [
            (Word("do", 2000, 2400), Word("for", 2400, 2800)),
            sure(("he", 3300, 3600), ("was", 3600, 3900)),
            sure(("then", 4500, 4800)),
            sure(("later", 5300, 5700), ("on", 5800, 6500)),
        ]
    )
    hyps = await late_utterance(accurate, HeardSpeech([(2000, 2800), (4500, 4800)]))
    _, (_, part_end_ms), (then_start_ms, then_end_ms), rest = accurate.spans
    assert then_start_ms <= part_end_ms and rest == (then_end_ms, 7000 + UNHEARD_PAD_MS)
    assert [h.text for h in finals(hyps)] == ["do for", "he was", "then", "later on"]


@pytest.mark.anyio
async def test_speech_left_past_a_late_window_is_not_heard_again_where_a_part_sent_alone_was() -> None:
    """Review: the fast pass gave an utterance ("then", 4500-4800, which Silero did not hear) only at 7700 ms, after
    the run's part to 6000 had gone alone and the speech Silero heard from 6200 was left to the next window. That
    late window ends at 5100, inside the part already sent: what it leaves waits from where it was left (6000), not
    from 5100, which would hear 5100-6000 a third time."""
    accurate = SpyPass(
        [
            (Word("do", 2000, 2400), Word("for", 2400, 2800)),
            sure(("then", 4500, 4800), ("x", 5200, 5600)),
            sure(("then", 4500, 4800)),
            sure(("later", 6200, 6900)),
        ]
    )
    await late_utterance(accurate, HeardSpeech([(2000, 2800), (6200, 6900)]))
    _, (_, part_end_ms), (_, late_end_ms), rest = accurate.spans
    assert late_end_ms < part_end_ms == 6000
    assert rest == (6000 - UNHEARD_PAD_MS, 7000 + UNHEARD_PAD_MS)


@pytest.mark.anyio
@pytest.mark.parametrize("next_start_ms", [4500, 5000])
async def test_the_next_window_hears_the_speech_silero_heard_after_a_part_of_a_run(next_start_ms: int) -> None:
    """The part of a run sent alone stops where Silero heard speech; the next utterance's window (the fast pass's
    words from `next_start_ms`, Silero's speech from 4500) still hears that speech from its start, with its pad."""
    phrase = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    later = (Word("not", next_start_ms, 5200),)
    accurate = SpyPass([phrase, sure(("he", 3300, 3600), ("was", 3600, 4000)), later])
    fast = listed(
        (3500, fast_final(("do", 2000, 2400), ("for", 2400, 2800))),
        (6000, fast_final(("not", next_start_ms, 5200))),
    )
    speech = HeardSpeech([(2000, 2800), (4500, 5200)])
    two = two_pass(fast, accurate, [(2000, 5200)], tail_ms=300, preroll_ms=400, speech=speech)
    hyps = await run(two, bytes(8000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    _, (_, part_end_ms), (next_window_ms, _) = accurate.spans
    assert part_end_ms == 4500 - SPEECH_PAD_MS
    assert next_window_ms <= 4500 - SPEECH_PAD_MS
    assert [h.text for h in finals(hyps)] == ["do for", "he was", "not"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("lead_ms", "job_start_ms"),
    [
        (1500, 5000 - 1500 - UNHEARD_PAD_MS),  # a whispered start 1.5 s before the first word the fast pass heard
        (SPEECH_REACH_MS, 5000 - SPEECH_REACH_MS - UNHEARD_PAD_MS),
        (RUN_MIN_MS - 100, 5000 - 400),  # a lead shorter than RUN_MIN_MS (a breath): the usual preroll
    ],
)
async def test_a_window_reaches_back_to_where_the_loose_detector_heard_its_speech_begin(
    lead_ms: int, job_start_ms: int
) -> None:
    accurate = FixedPass(HELLO)
    fast = listed((6500, fast_final(("all", 5000, 5300), ("very", 5300, 5600), ("whispered", 5600, 5900))))
    two = two_pass(fast, accurate, [(5000 - lead_ms, 5900)], preroll_ms=400)
    hyps = await run(two, bytes(9000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [start for start, _ in accurate.jobs] == [job_start_ms]
    assert len(finals(hyps)) == 1 and two.stats.unheard_sent == 0


@pytest.mark.anyio
async def test_a_lead_longer_than_the_reach_goes_as_a_window_of_its_own_before_the_utterance_s() -> None:
    """A run begun more than SPEECH_REACH_MS before the fast pass's first word is too long for the utterance's
    window to reach back over. It was taken for steady sound and sent nowhere: a long whisper running straight
    into voiced speech was in no final, and nothing said so. Now the part before the utterance's window goes first
    as a window of its own, its words a final only when Whisper is sure of them."""
    lead_ms = SPEECH_REACH_MS + 100
    said = fast_final(("all", 5000, 5300), ("very", 5300, 5600), ("whispered", 5600, 5900))
    accurate = SpyPass([sure(("so", 2200, 2600), ("then", 2600, 3000)), said.words])
    fast = listed_frames(9000, {ms: [partial(said, ms)] for ms in range(5100, 6500, 100)} | {6500: [said]})
    two = two_pass(fast, accurate, [(5000 - lead_ms, 5900)], preroll_ms=400)
    hyps = await run(two, bytes(9000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    # The run's own window, padded before, ends where the utterance's begins (its preroll before its first word).
    assert accurate.spans == [(5000 - lead_ms - UNHEARD_PAD_MS, 5000 - 400), (5000 - 400, 5900 + 300)]
    assert [h.text for h in finals(hyps)] == ["so then", "all very whispered"]
    assert two.stats.unheard_sent == 1


def between(second_ms: int, run_from_ms: int = 2000) -> tuple[ListedFast, tuple[int, int]]:
    """Two phrases the fast pass heard ("do for" at 2000-2800 ms, "he was" from `second_ms`), and the loose
    detector's one run over both: what lay between them (a whisper) had no pause of RUN_PAUSE_MS either side."""
    first = fast_final(("do", 2000, 2400), ("for", 2400, 2800))
    second = fast_final(("he", second_ms, second_ms + 400), ("was", second_ms + 400, second_ms + 800))
    answers = {ms: [partial(first, ms)] for ms in range(2100, 3500, 100)} | {3500: [first]}
    # The fast pass's utterance is open while the run goes on: the run waits for it (`_send_unheard`).
    given_ms = (second_ms + 1500) // 100 * 100  # the fast pass answers at 100 ms frames' ends
    answers |= {ms: [partial(second, ms)] for ms in range(second_ms // 100 * 100 + 100, given_ms, 100)}
    answers[given_ms] = [second]
    return listed_frames(second_ms + 4000, answers), (run_from_ms, second_ms + 800)


def partial(said: Hypothesis, at_ms: int) -> Hypothesis:
    """The fast pass's interim of `said` when the audio fed reaches `at_ms`: its words begun by then."""
    words = tuple(w for w in said.words if w.start_ms < at_ms) or said.words[:1]
    return Hypothesis(words, False, said.start_ms, words[-1].end_ms)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("second_ms", "run_from_ms", "sent"),
    [
        # The first phrase's window (1600-3100 ms: its words, the 400 ms preroll and the 300 ms tail); the second's
        # begins 400 ms before its first word.
        (6000, 2000, True),  # 2.5 s between the windows
        (3100 + RUN_MIN_MS + 400, 2000, True),
        (3100 + RUN_MIN_MS + 400 - 30, 2000, False),  # shorter than any run taken alone: a breath between the phrases
        (6000, 1500, True),  # the run began before the first window's audio
        (2000 + RUN_MAX_MS, 2000, True),
        # ... more than RUN_MAX_MS before the second phrase: steady sound (noise the loose detector hears as one run
        # without end)
        (2000 + RUN_MAX_MS + 100, 2000, False),
    ],
)
async def test_a_whisper_between_two_phrases_in_one_run_is_a_final_between_theirs(
    second_ms: int, run_from_ms: int, sent: bool
) -> None:
    """Review (issue 16, "never a silent loss"): the loose detector heard the two phrases and the whisper between
    them as one run, which began in the first phrase's speech. It was reported only after the second phrase, and
    then only what came after that phrase's window went to Whisper: the whisper between the windows was in no final,
    and nothing said so. Now the part of the run between the windows goes first when the second window goes, and
    the finals keep their time order."""
    fast, run_span = between(second_ms, run_from_ms)
    first = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    whisper = sure(("so", 3300, 3600), ("we", 3600, second_ms - 500))
    second = (Word("he", second_ms, second_ms + 400), Word("was", second_ms + 400, second_ms + 800))
    accurate = SpyPass([first, whisper, second] if sent else [first, second])
    two = two_pass(fast, accurate, [run_span], preroll_ms=400, tail_ms=300)
    hyps = await run(two, bytes((second_ms + 4000) * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    texts = [h.text for h in finals(hyps)]
    if sent:
        assert accurate.spans == [(1600, 3100), (3100, second_ms - 400), (second_ms - 400, second_ms + 800 + 300)]
        assert texts == ["do for", "so we", "he was"]
    else:
        assert accurate.spans == [(1600, 3100), (second_ms - 400, second_ms + 800 + 300)]
        assert texts == ["do for", "he was"]
    for before, after in itertools.pairwise(finals(hyps)):
        assert before.end_ms <= after.start_ms
    assert two.stats.unheard_sent == int(sent)


@pytest.mark.anyio
@pytest.mark.parametrize(("s_per_ms", "sent"), [(0.07, True), (0.1, False)])
async def test_a_whisper_between_two_phrases_goes_only_with_the_utterance_s_time_kept_back(
    s_per_ms: float, sent: bool
) -> None:
    """A review: in steady noise every pause between phrases is such a part, and under load its window would take
    the accurate pass's time from the utterance's own. It goes only when, with the utterance's window's estimate kept
    back, it would be back by the deadline twice over (600 s here; the part 2.5 s of audio, the utterance's window
    1.5 s: 455 s at 0.07 s a ms, 650 s at 0.1, where the utterance's alone, 300 s twice over, still fits). Otherwise
    it is not sent, and no warning says so: it may be a breath or noise, and nothing was shown for it."""
    fast, run_span = between(6000)
    first = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    whisper = sure(("so", 3300, 3600), ("we", 3600, 5500))
    second = (Word("he", 6000, 6400), Word("was", 6400, 6800))
    accurate = SaidPass([first, whisper, second] if sent else [first, second], s_per_ms)
    two = two_pass(fast, accurate, [run_span], preroll_ms=400, tail_ms=300, said_reach_ms=0)
    hyps = await run(two, bytes(10_000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [h.text for h in finals(hyps)] == (["do for", "so we", "he was"] if sent else ["do for", "he was"])
    assert two.stats.unheard_sent == int(sent) and not any(h.warning for h in finals(hyps))


class PlacesPass(SpyPass):
    """SpyPass whose queue has `places` free (types.Places) and that refuses the jobs numbered in `refuse` (0: the
    first asked) as the scheduler does when the work queued ahead would make them late."""

    def __init__(self, answers: list[tuple[Word, ...]], places: int, refuse: set[int]) -> None:
        super().__init__(answers)
        self.places, self.refuse, self.asked = places, refuse, 0

    def free_places(self) -> int:
        return self.places

    def submit(self, pcm: bytes, offset_ms: int, **kwargs: Any) -> asyncio.Future[tuple[Word, ...]]:
        asked, self.asked = self.asked, self.asked + 1
        if asked in self.refuse:
            raise AccurateBusy("it would finish past its deadline")
        return super().submit(pcm, offset_ms, **kwargs)


@pytest.mark.anyio
@pytest.mark.parametrize(("places", "refuse"), [(1, set[int]()), (4, {1})])
async def test_a_whisper_between_two_phrases_the_accurate_pass_would_not_take_is_left_unsaid(
    places: int, refuse: set[int]
) -> None:
    """A second review: such a window took the queue's last place (the utterance's own was then refused, its final
    the fast text, "too busy"), and one the accurate pass refused for the work queued ahead was a final with the
    faint-speech warning, where it may be a breath or noise and nothing was shown for it. It goes only with a place
    left for the utterance's window after it; refused, nothing is sent or said, and the utterance's final is
    Whisper's."""
    fast, run_span = between(6000)
    first = (Word("do", 2000, 2400), Word("for", 2400, 2800))
    second = (Word("he", 6000, 6400), Word("was", 6400, 6800))
    accurate = PlacesPass([first, second], places, refuse)
    two = two_pass(fast, accurate, [run_span], preroll_ms=400, tail_ms=300)
    hyps = await run(two, bytes(10_000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [(h.text, h.warning) for h in finals(hyps)] == [("do for", ""), ("he was", "")]
    assert accurate.spans == [(1600, 3100), (6000 - 400, 6800 + 300)]
    assert two.stats.unheard_sent == 0


@pytest.mark.anyio
async def test_a_whisper_between_two_phrases_has_the_deadline_of_the_second_phrase_s_window() -> None:
    """At real-time pace, with the second phrase long, the window between goes only when the second phrase's does:
    counted from its own end its deadline had passed by then (measured at real time on the varied set: "no time to
    decode it (-1.40 s left)", a warning instead of Whisper's answer)."""
    second_ms, clock = 5000, AudioClock()
    first = fast_final(("do", 2000, 2400), ("for", 2400, 2800))
    second = fast_final(*((f"w{i}", second_ms + 400 * i, second_ms + 400 * (i + 1)) for i in range(8)))
    answers = {ms: [partial(first, ms)] for ms in range(2100, 3500, 100)} | {3500: [first]}
    answers |= {ms: [partial(second, ms)] for ms in range(second_ms + 100, second_ms + 3800, 100)}
    answers[second_ms + 3800] = [second]
    fast = listed_frames(second_ms + 7000, answers)
    accurate = EstimatingSpyPass(
        [(Word("do", 2000, 2400), Word("for", 2400, 2800)), sure(("so", 3300, 3600), ("we", 3600, 4200))], clock
    )
    two = TwoPassRecognizer(
        fast,
        accurate,
        fallback_after_s=2.0,
        tail_ms=300,
        voice=ListedRuns([(2000, second_ms + 3200)]),
        clock=clock,
    )
    hyps = await run_at_pace(two, clock, bytes((second_ms + 7000) * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert accurate.spans[1] == (3100, second_ms - 400)
    assert [h.text for h in finals(hyps)][:2] == ["do for", "so we"]
    assert not any(UNHEARD_WARNING in h.warning for h in finals(hyps))


@pytest.mark.anyio
async def test_a_run_after_an_utterance_goes_after_it_and_finals_keep_their_order() -> None:
    """A whisper after a spoken phrase: the phrase's window goes first (its pieces were held when the run ended), and
    the run's window starts after the phrase's audio."""
    phrase = (Word("do", 200, 600), Word("for", 600, 1000))
    whisper = sure(("he", 2200, 2600), ("was", 2600, 3000))
    accurate = AnsweringPass([phrase, whisper])
    two = TwoPassRecognizer(
        listed((1100, fast_final(("do", 200, 600), ("for", 600, 1000)))),
        accurate,
        fallback_after_s=600,
        merge_ms=3000,  # the phrase is held past the run's end
        said_reach_ms=0,
        voice=ListedRuns([(2000, 3200)]),
    )
    hyps = await run(two, bytes(8000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [h.text for h in finals(hyps)] == ["do for", "he was"]
    first, second = finals(hyps)
    assert first.end_ms <= second.start_ms


@pytest.mark.anyio
async def test_no_window_reaches_back_over_a_run_whisper_heard_no_speech_in() -> None:
    """Review: after a run whose answer was dropped, the next window reached back over it (to the previous job's
    start, or to the words said before it, given to Whisper again), and what was dropped came back in its final."""
    accurate = SpyPass(
        [
            (Word("do", 200, 600), Word("for", 600, 1000)),
            (),  # the run: no speech
            (Word("he", 1950, 2150), Word("was", 2150, 2300)),
        ]
    )
    fast = listed(
        (1100, fast_final(("do", 200, 600), ("for", 600, 1000))),
        (2500, fast_final(("he", 1950, 2150), ("was", 2150, 2300))),
    )
    two = TwoPassRecognizer(fast, accurate, fallback_after_s=600, merge_ms=0, voice=ListedRuns([(1000, 1850)]))
    hyps = await run(two, bytes(4000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert [h.text for h in finals(hyps)] == ["do for", "he was"]
    # The third starts where the run ended, not back at 1000 or 0.
    assert [start for start, _ in accurate.spans] == [0, 1000, 1850]


@pytest.mark.anyio
async def test_a_run_waiting_for_held_pieces_goes_when_a_paused_client_s_pieces_leave_by_their_deadline() -> None:
    """Review: the held pieces before a run may leave from wait_ready (no audio arriving); the run went only with
    the next audio, its budget by then spent."""
    accurate = FixedPass(SURE_HELLO)
    clock = AudioClock()
    two = TwoPassRecognizer(
        listed((1100, fast_final(("do", 200, 600), ("for", 600, 1000)))),
        accurate,
        fallback_after_s=5.0,
        merge_ms=10_000,  # held until they must go to be back by their deadline (6.1 s)
        voice=ListedRuns([(1500, 2500)]),
        clock=clock,
    )
    session = await two.open()
    try:
        out = []
        for _ in range(31):  # 3.1 s at real-time pace: the run has ended, the pieces are still held
            clock.now += 0.1
            out += await session.feed(bytes(100 * BYTES_PER_MS))
        assert finals(out) == [] and accurate.jobs == []
        clock.now = 5.5  # the client paused: nothing arrives, and the pieces must go
        assert await asyncio.wait_for(session.wait_ready(), 5)
        got = finals(session.collect())
    finally:
        await session.aclose()
    assert [start for start, _ in accurate.jobs] == [0, 1500 - UNHEARD_PAD_MS]
    assert len(got) == 2


@pytest.mark.anyio
async def test_speech_left_to_the_next_window_goes_when_due_while_a_paused_client_sends_nothing() -> None:
    """Review: speech Silero heard after the last window waits for the next utterance until half the fallback time
    after it ended; a client that then pauses sends no audio, and it went only with the next audio or the end of the
    stream, too late to decode. The stream server's pusher (one wait_ready() loop for the whole stream, as
    server/transport.py `_push`) sends it when it is due."""
    accurate = SpyPass([(Word("turn", 100, 500), Word("left", 550, 1000)), sure(("then", 4500, 5000))])
    clock = AudioClock()
    two = TwoPassRecognizer(
        listed((1300, fast_final(("turn", 100, 500), ("left", 550, 1000)))),
        accurate,
        fallback_after_s=2.0,
        tail_ms=300,
        voice=ListedRuns([(0, 6000)]),
        speech=HeardSpeech([(0, 6000)]),
        clock=clock,
    )
    session = await two.open()
    pushed: list[Hypothesis] = []
    pushed_final = asyncio.Event()

    async def push() -> None:
        while await session.wait_ready():
            pushed.extend(session.collect())
            if any(h.start_ms >= 1300 for h in finals(pushed)):  # past the first window: the speech that waited
                pushed_final.set()

    pusher = asyncio.create_task(push())
    try:
        out = []
        for _ in range(66):  # 6.6 s at real-time pace: the run is heard to end at 6.51 s
            clock.now += 0.1
            out += await session.feed(bytes(100 * BYTES_PER_MS))
            await asyncio.sleep(0)
        assert len(accurate.spans) == 1  # the first window; the speech after it waits
        clock.now = 7.05  # the client paused; the speech ended at 6.0 s: due at 7.0 s
        await asyncio.wait_for(pushed_final.wait(), 5)
    finally:
        await session.aclose()
        await pusher
    assert accurate.spans[1] == (accurate.spans[0][1], 6000 + UNHEARD_PAD_MS)
    assert [h.text for h in finals(out + pushed)] == ["turn left", "then"]


class StuckFirstPass(EstimatingSpyPass):
    """EstimatingSpyPass whose first job never comes back (a window still decoding); the others answer at once.
    Its beam costs 0.6 s, so held pieces go to it 1.4 s before their deadline (twice that, and 0.2 s)."""

    def best_estimate_s(self, audio_ms: int) -> float:
        return 0.6

    def __init__(self, answers: list[tuple[Word, ...]], clock: AudioClock) -> None:
        super().__init__(answers, clock)
        self.second = asyncio.Event()  # set when a second job is asked

    def submit(self, pcm: bytes, offset_ms: int, **kwargs: Any) -> asyncio.Future[tuple[Word, ...]]:
        answered = super().submit(pcm, offset_ms, **kwargs)
        if len(self.spans) == 1:
            return asyncio.get_running_loop().create_future()
        self.second.set()
        return answered


@pytest.mark.anyio
async def test_held_pieces_of_a_paused_client_go_when_due_while_an_earlier_final_waits() -> None:
    """Review: while a final was pending, the stream server's pusher (wait_ready) waited for that final alone, so
    the pieces held after it, with no audio arriving (a paused client), went only at that final's deadline (3 s),
    not when they were due (2.6 s: their deadline 4 s less twice the beam's 0.6 s and 0.2 s); here, with the clock
    stopped between the two, never."""
    clock = AudioClock()
    accurate = StuckFirstPass([(), sure(("go", 1600, 2000))], clock)
    first = fast_final(("do", 200, 600), ("for", 600, 1000))
    two = TwoPassRecognizer(
        listed((1100, first), (2100, fast_final(("go", 1600, 2000)))),
        accurate,
        fallback_after_s=2.0,
        merge_ms=300,
        clock=clock,
    )
    session = await two.open()
    pushed: list[Hypothesis] = []

    async def push() -> None:
        while await session.wait_ready():
            pushed.extend(session.collect())

    pusher = asyncio.create_task(push())
    try:
        for _ in range(21):  # 2.1 s at real-time pace: "do for" went at 1.4 s (never back), "go" is held
            clock.now += 0.1
            await session.feed(bytes(100 * BYTES_PER_MS))
            await asyncio.sleep(0)
        assert len(accurate.spans) == 1
        clock.now = 2.7  # the client paused; the held piece was due at 2.6 s, the first final is due at 3.0 s
        await asyncio.wait_for(accurate.second.wait(), 5)
    finally:
        await session.aclose()
        await pusher
    assert accurate.asked_at[1] == 2.7 and pushed == []


class GatedFast(ListedFast):
    """ListedFast whose `gate_at`-th feed (1-based) waits for `gate` before it answers: the fast pass still
    decoding while the stream server's pusher runs."""

    def __init__(self, answers: list[list[Hypothesis]], gate_at: int) -> None:
        super().__init__(answers)
        self.gate, self.gate_at, self.fed = asyncio.Event(), gate_at, 0

    async def feed(self, pcm: bytes) -> list[Hypothesis]:
        self.fed += 1
        if self.fed == self.gate_at:
            await self.gate.wait()
        return await super().feed(pcm)


class HeldFirstPass(SpyPass):
    """SpyPass whose first job comes back when the test says (`first`)."""

    def __init__(self, answers: list[tuple[Word, ...]]) -> None:
        super().__init__(answers)
        self.first: asyncio.Future[tuple[Word, ...]] | None = None

    def submit(self, pcm: bytes, offset_ms: int, **kwargs: Any) -> asyncio.Future[tuple[Word, ...]]:
        answered = super().submit(pcm, offset_ms, **kwargs)
        if self.first is not None:
            return answered
        self.first = asyncio.get_running_loop().create_future()
        return self.first


@pytest.mark.anyio
async def test_the_pusher_leaves_held_pieces_to_feed_while_the_fast_pass_decodes() -> None:
    """Review: while feed() waits for the fast pass, the detectors and the audio count have the new frame and the
    fast pass's state does not. The pusher, woken by the first window's answer then, released the held "go" as if
    the speaker had paused (no utterance in progress, `merge_ms` of audio since), where the frame's answer was the
    next utterance's first word: "go" went alone instead of waiting to go with what follows."""
    phrase = (Word("do", 200, 600), Word("for", 600, 1000))
    accurate = HeldFirstPass([phrase, sure(("go", 1600, 2000))])
    answers = listed((1100, fast_final(("do", 200, 600), ("for", 600, 1000))), (2100, fast_final(("go", 1600, 2000))))
    answers.answers += [[], [], [Hypothesis((Word("on", 2300, 2400),), False, 2300, 2400)]]
    fast = GatedFast(answers.answers, gate_at=24)
    clock = AudioClock()
    two = TwoPassRecognizer(fast, accurate, fallback_after_s=2.0, merge_ms=300, clock=clock)
    session = await two.open()
    pushed: list[Hypothesis] = []

    async def push() -> None:
        while await session.wait_ready():
            pushed.extend(session.collect())

    pusher = asyncio.create_task(push())
    frame = bytes(100 * BYTES_PER_MS)
    try:
        for _ in range(23):  # "do for" went at 1.4 s and is not back; "go" is held (to 2.4 s of audio at least)
            clock.now += 0.1
            await session.feed(frame)
            await asyncio.sleep(0)
        assert len(accurate.spans) == 1 and accurate.first is not None
        clock.now += 0.1
        feeding = asyncio.create_task(session.feed(frame))  # 2.4 s: the fast pass is still decoding it
        await asyncio.sleep(0.05)
        accurate.first.set_result(phrase)  # wakes the pusher mid-feed
        await asyncio.sleep(0.05)
        fast.gate.set()
        await feeding
        assert [h.text for h in finals(pushed)] == ["do for"]
        assert len(accurate.spans) == 1  # "go" still held: an utterance is in progress
    finally:
        await session.aclose()
        await pusher


@pytest.mark.anyio
async def test_the_pusher_leaves_due_held_pieces_to_feed_while_the_fast_pass_decodes() -> None:
    """Review, as above with no final pending: the held "do for" fell due (2.4 s: its deadline 3 s less 0.6 s)
    while the fast pass decoded the frame that ends "go". The pusher released "do for" alone, and "go", which that
    frame's answer would have joined to it, became a window of its own."""
    accurate = SpyPass([(Word("do", 200, 600), Word("for", 600, 1000), Word("go", 1600, 2300))])
    answers = listed((1100, fast_final(("do", 200, 600), ("for", 600, 1000))), (2400, fast_final(("go", 1600, 2300))))
    fast = GatedFast(answers.answers, gate_at=24)
    clock = AudioClock()
    two = TwoPassRecognizer(fast, accurate, fallback_after_s=2.0, merge_ms=10_000, clock=clock)
    session = await two.open()

    async def push() -> None:
        while await session.wait_ready():
            session.collect()

    pusher = asyncio.create_task(push())
    frame = bytes(100 * BYTES_PER_MS)
    try:
        for _ in range(23):
            clock.now += 0.1
            await session.feed(frame)
            await asyncio.sleep(0)
        assert accurate.spans == []  # "do for" held until 2.4 s
        clock.now += 0.1
        feeding = asyncio.create_task(session.feed(frame))  # 2.4 s: due, while the fast pass still decodes
        await asyncio.sleep(0.3)  # past the pusher's timer (0.1 s, set at 2.3 s)
        fast.gate.set()
        await feeding
    finally:
        await session.aclose()
        await pusher
    assert len(accurate.spans) == 1 and accurate.spans[0][1] >= 2300, accurate.spans  # one window, "go" in it


@pytest.mark.anyio
async def test_the_first_pending_final_goes_by_the_deadline_of_any_after_it() -> None:
    """Review: only the first pending final's deadline was checked, and the finals after it go only after it, so
    one whose deadline came first waited past it. A window held while the speaker went on has its deadline moved
    to the detector's end of speech, which can fall after that of a later window counted from the fast pass's end.
    Two windows that never come back, deadlines 5 s and 3 s: at 3.1 s both finals are out, the fast text, in
    order."""
    clock = AudioClock()
    two = TwoPassRecognizer(listed(), NeverPass(), fallback_after_s=2.0, clock=clock)
    session = await two.open()
    assert isinstance(session, TwoPassSession)
    loop = asyncio.get_running_loop()
    try:
        for fast, deadline in ((fast_final(("do", 200, 600)), 5.0), (fast_final(("go", 1600, 2000)), 3.0)):
            session._queue(PendingFinal(fast, loop.create_future(), deadline - 2.0, deadline))
        clock.now = 2.9
        assert session.collect() == []
        clock.now = 3.1
        assert await asyncio.wait_for(session.wait_ready(), 1)  # the stream server's pusher is woken
        assert [h.text for h in finals(session.collect())] == ["do", "go"]
    finally:
        await session.aclose()


@pytest.mark.anyio
async def test_a_final_queued_past_its_deadline_does_not_hurry_the_one_before_it() -> None:
    """Review of the rule above: a window queued with no time left (its deadline already past: "no time to decode
    it") gains nothing from the first final going sooner, and that final would lose Whisper's answer."""
    clock = AudioClock()
    two = TwoPassRecognizer(listed(), NeverPass(), fallback_after_s=2.0, clock=clock)
    session = await two.open()
    assert isinstance(session, TwoPassSession)
    loop = asyncio.get_running_loop()
    first: asyncio.Future[tuple[Word, ...]] = loop.create_future()
    try:
        session._queue(PendingFinal(fast_final(("do", 200, 600)), first, 3.0, 5.0))
        clock.now = 3.5
        session._queue(PendingFinal(fast_final(("go", 1600, 2000)), None, 1.0, 3.0, error="no time to decode it"))
        assert session.collect() == []
        first.set_result((Word("Do.", 200, 600),))
        assert [h.text for h in finals(session.collect())] == ["Do.", "go"]
    finally:
        await session.aclose()


@pytest.mark.anyio
async def test_a_run_still_open_when_the_stream_ends_is_sent() -> None:
    accurate = FixedPass(SURE_HELLO)
    two = two_pass(listed(), accurate, [(1000, 4900)])
    hyps = await run(two, bytes(5000 * BYTES_PER_MS), frame=100 * BYTES_PER_MS)
    assert accurate.jobs == [(1000 - UNHEARD_PAD_MS, 4000 + UNHEARD_PAD_MS)] and len(finals(hyps)) == 1


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("loose", [False, True])
async def test_a_whispered_sentence_is_transcribed(
    fast_pass: PocketsphinxRecognizer,
    whisper_pass: AccurateScheduler,
    loose: bool,
) -> None:
    """The real passes on the whispered sentence: without the loose detector no pass hears it and nothing comes
    back, not even a warning; with it, Whisper's final has the sentence."""
    name = "mfa-whisper2.wav"
    pcm = bytes(16_000) + load_human(name) + bytes(32_000)
    two = TwoPassRecognizer(
        fast_pass, whisper_pass, fallback_after_s=600, voice=LooseVoiceDetector() if loose else None
    )
    got = finals(await run(two, pcm, frame=50 * BYTES_PER_MS))
    if not loose:
        assert got == []
        return
    text = " ".join(h.text for h in got)
    assert word_errors(human_reference(name), text) <= 2, text
    assert all(isinstance(h, Hypothesis) and not h.warning for h in got)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_whispered_sentence_straight_after_a_spoken_one_is_transcribed(
    fast_pass: PocketsphinxRecognizer,
    whisper_pass: AccurateScheduler,
) -> None:
    """The real passes (Silero cutting the windows, as the loader builds them) on JFK's speech cut at its last voiced
    frame, 50 ms of silence, then the whispered sentence: the loose detector hears both as one run. Before, the
    whispered sentence was in no final and nothing said so."""
    from pocketsphinx import Vad

    spoken = load_human("jfk.wav")
    vad = Vad(mode=3, sample_rate=16_000, frame_length=FRAME_MS / 1000)
    frame = FRAME_MS * BYTES_PER_MS
    voiced = [at for at in range(0, len(spoken) - frame + 1, frame) if vad.is_speech(spoken[at : at + frame])]
    spoken = spoken[: voiced[-1] + frame]
    whispered = load_human("mfa-whisper2.wav")
    pcm = bytes(16_000) + spoken + bytes(50 * BYTES_PER_MS) + whispered + bytes(32_000)
    two = TwoPassRecognizer(
        fast_pass, whisper_pass, fallback_after_s=600, speech=SileroDetector(), voice=LooseVoiceDetector()
    )
    got = finals(await run(two, pcm, frame=50 * BYTES_PER_MS))
    text = " ".join(h.text for h in got)
    reference = human_reference("jfk.wav") + " " + human_reference("mfa-whisper2.wav")
    assert word_errors(reference, text) <= 5, text
    assert two.stats.unheard_finals == 1


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_whispered_sentence_between_two_spoken_ones_is_transcribed(
    fast_pass: PocketsphinxRecognizer,
    whisper_pass: AccurateScheduler,
) -> None:
    """The real passes (as the loader builds them) on JFK's speech, the whispered sentence and the LibriSpeech
    sentence, each cut to where the loose detector hears it, 50 ms apart: one run. Before, the whispered sentence was
    in no final and nothing said so (9 of the 43 words wrong, all of them its own)."""
    from pocketsphinx import Vad

    def heard(name: str, mode: int) -> bytes:
        pcm = load_human(name)
        vad = Vad(mode=mode, sample_rate=16_000, frame_length=FRAME_MS / 1000)
        frame = FRAME_MS * BYTES_PER_MS
        voiced = [at for at in range(0, len(pcm) - frame + 1, frame) if vad.is_speech(pcm[at : at + frame])]
        return pcm[voiced[0] : voiced[-1] + frame]

    names = ("jfk.wav", "mfa-whisper2.wav", "librispeech-61-70968-0000.wav")
    gap = bytes(50 * BYTES_PER_MS)
    pcm = bytes(16_000) + gap.join(heard(name, 1 if "whisper" in name else 3) for name in names) + bytes(32_000)
    two = TwoPassRecognizer(
        fast_pass, whisper_pass, fallback_after_s=600, speech=SileroDetector(), voice=LooseVoiceDetector()
    )
    got = finals(await run(two, pcm, frame=50 * BYTES_PER_MS))
    text = " ".join(h.text for h in got)
    assert word_errors(" ".join(human_reference(name) for name in names), text) <= 4, text
    assert two.stats.unheard_finals == 1
    for before, after in itertools.pairwise(got):
        assert before.end_ms <= after.start_ms
