"""The embedded engine's settings and their defaults: written here once, read by settings.py (from the
environment), the loader and the emulators."""

from __future__ import annotations

from dataclasses import dataclass, replace

# When no cost estimate is known: how long before its deadline an utterance is sent to the accurate pass.
DEFAULT_RESERVE_S = 0.6
# How many times its estimated cost an accurate job is given before its deadline: the two-pass recognizer sends held
# pieces that early (twopass.py `_release_at`), and the scheduler gives a job the beam only with that much time left
# for the beam's cost (accurate.py BEAM_MARGIN). One number, so a window released for the beam has room for it.
RESERVE_MARGIN = 2.0


def pause_leaves_time(pause_ms: int, fallback_after_s: float) -> bool:
    """Sent to Whisper once the detector has heard a pause this long, an utterance still has time for it before
    its fallback deadline."""
    return pause_ms / 1000 + DEFAULT_RESERVE_S < fallback_after_s


@dataclass(frozen=True)
class EngineConfig:
    """Empty model paths mean the US-English model shipped in the pocketsphinx wheel."""

    # Concurrent sessions; more get RecognizerBusy (a "busy" ERROR on the socket). Each pocketsphinx decoder holds
    # its own copy of the model (about 95 MB resident; 155 MB with the narrower search for load shedding). 6: on 2
    # cores the most real-time sessions whose finals stay almost all Whisper's (3-5 of 79 fell back, final p95
    # 1.7 s; 8 sessions: 5-19 of 105) with room for a slower hour (bench/README.md "Real time on recorded human
    # speech").
    max_sessions: int = 6
    # pocketsphinx worker processes; None: one per core (at most max_sessions). Set by `python -m server --workers`
    # to each worker's share of the cores.
    fast_workers: int | None = None
    hmm: str = ""
    lm: str = ""
    dictionary: str = ""
    # A JSGF grammar replaces the language model.
    jsgf: str = ""
    # The Endpointer (pocketsphinx's, in 30 ms frames): `vad_window_s` seconds of audio it decides on, of which
    # `vad_ratio` must be speech to start an utterance (and that much non-speech to end one), and the voice activity
    # detector's aggressiveness `vad_mode`, 0 (calls more of the audio speech) to 3. None: the default for the mode,
    # `endpointer()` below.
    vad_window_s: float | None = None
    vad_ratio: float | None = None
    vad_mode: int | None = None
    # Milliseconds of audio between looks at the fast pass's partial text (an interim goes out when it changed);
    # a look happens when audio arrives, so the page's frame size (50 ms for this engine) is the floor.
    partial_every_ms: int = 50
    # Rescoring passes at the end of each utterance: on the test clips word errors fall from 4 % to 0 % for about
    # 60 ms more per final (bench/README.md), so they are on by default when the fast pass makes the finals.
    fwdflat: bool = True
    bestpath: bool = True
    # With Whisper making the finals they would only polish the endpoint interim (and a fallback final), and they
    # delay it: 842 → 578 ms p50 end of speech → endpoint interim when turned off (bench/README.md), so they run
    # alongside Whisper only when this is set.
    rescoring_with_whisper: bool = False
    # With Whisper making the finals, the fast pass prunes its search harder (`LEAN_SEARCH` below): its text is
    # only the interims (and a fallback final), and a cheaper fast pass is what lets more sessions keep real time.
    lean_search: bool = True
    # How far behind real time (ms) a session's audio may fall before the fast pass decodes the utterances it
    # begins with the narrower search (`shed_search()`: half the CPU in noise, rougher interims); 0: never. Behind:
    # the oldest audio not yet decoded is past when it arrived, or, from a client sending faster than real time,
    # past when real time reached it (server.transport.DueTimes). Issue 16's rule: an engine that cannot keep up
    # sheds quality, not real time (bench/README.md "Load shedding").
    shed_after_ms: int = 400
    # ... and for how long after (ms of audio): a session that only just caught up would fall behind again with its
    # own search, and the search can only change between utterances.
    shed_hold_ms: int = 10_000
    # Admission by measured capacity: while a session of the fast pass's has stayed this far behind real time (ms)
    # for a second (the cores cannot carry what they have, shedding or not), a new session is refused as busy
    # (1013, "try again") rather than admitted to push every session further behind; 0: only `max_sessions` bounds
    # them. 2000: above the stall a cold decoder's first utterance can cause (1.26 s seen), below where interims
    # stop being live (bench/README.md "Admission by measured capacity").
    admit_behind_ms: int = 2000

    # The accurate pass (Whisper through faster-whisper/CTranslate2) for finals; False: the fast pass alone.
    whisper: bool = True
    # "base": Whisper base from the two pinned model wheels (no network). Otherwise a faster-whisper model name
    # (downloaded by faster-whisper on first use) or a local folder holding a CTranslate2 model.
    whisper_model: str = "base"
    # CTranslate2 threads for the one accurate job that runs at a time: this machine's two cores (it runs below the
    # fast pass's priority, so it only takes what the fast pass and the sockets leave).
    whisper_threads: int = 2
    # Beam search width of the accurate pass while it has time to spare: no other job waiting, the worker busy less
    # than 30 % of the last 10 s, and twice the beam's measured cost still before the job's deadline
    # (server/engine/accurate.py BEAM_BELOW_SHARE, BEAM_MARGIN); otherwise it decodes greedily. Beam 5
    # (faster-whisper's own default) with that margin: one session of the held-out talks 37-41 words wrong of 317 in
    # five runs against 42-43 greedy (33 in six with the windows held to their deadline released in time for the
    # beam, twopass.py `_release_at`), at 10 dB 151 against 179, the human clips 8 of 113 either way (14 against 13
    # at 10 dB), eight sessions 104 and 116 of 904 against 105 and 141 the same hour; finals about 90 ms later
    # with one session (bench/README.md "Beam search for the accurate pass", "The margin"). Without the margin a
    # dense window's beam missed its deadline (its final the fast text) in six of eight runs. 1: always greedy.
    whisper_beam: int = 5
    # How many steps below the app's OS priority the accurate pass's process runs (os.nice; 0 keeps it level).
    whisper_nice: int = 10
    # Utterances waiting for (or in) the accurate pass across all sessions; beyond it, finals fall back at once.
    whisper_queue: int = 4
    # The encoder's window: the utterance plus 2 s, at least this many seconds (at most Whisper's 30).
    whisper_min_window_s: float = 10.0
    # After an endpoint, audio to wait for the speech to go on: pieces the short endpointer window split at a
    # shorter pause go to Whisper as one utterance (Whisper does much better on whole sentences: 12 % → 1.7 % word
    # errors on the noisy clips), at the price of this much more delay before the final.
    merge_pause_ms: int = 400
    # ... and held until Silero's voice activity detector (server/engine/silero.py) has heard a pause this long
    # after them, so Whisper's windows end where the speaker paused; the detector also puts speech the fast pass
    # opened no utterance on into the next window. 0: no detector, the fast pass's endpoints alone cut the windows.
    # Measured on the held-out talks (bench/README.md "Windows cut where the speaker paused").
    speech_pause_ms: int = 500
    # End of speech → the latest an accurate final may come; later, the fast pass's text is the final (with a
    # WARNING to the client). With the detector, pieces held past the fast pass's endpoint while the speaker went
    # on (for up to 8 s) count from where it heard the speech end.
    fallback_after_s: float = 2.0
    # Where the model from the wheels is assembled; empty: `cache/live-stt` inside the Python environment
    # (sys.prefix, the project's .venv), so removing the environment removes it too.
    model_cache: str = ""

    def problem(self) -> str:
        """What makes these settings unusable together, or ""."""
        if self.whisper and self.speech_pause_ms and not pause_leaves_time(self.speech_pause_ms, self.fallback_after_s):
            return (
                f"LOCAL_SPEECH_PAUSE_MS ({self.speech_pause_ms}) must be more than {DEFAULT_RESERVE_S * 1000:.0f} ms "
                f"shorter than LOCAL_FALLBACK_AFTER_S ({self.fallback_after_s} s)."
            )
        return ""

    def endpointer(self) -> Endpointing:
        """The Endpointer's settings: those set here, the rest from the mode's defaults."""
        base = LOW_LATENCY if self.whisper else SENTENCES
        return Endpointing(
            window_s=base.window_s if self.vad_window_s is None else self.vad_window_s,
            ratio=base.ratio if self.vad_ratio is None else self.vad_ratio,
            vad_mode=base.vad_mode if self.vad_mode is None else self.vad_mode,
        )

    def search(self) -> Search:
        """pocketsphinx's pruning for the mode: lean beside Whisper (unless turned off), its own defaults alone."""
        return LEAN_SEARCH if self.whisper and self.lean_search else FULL_SEARCH

    def shed_search(self) -> Search:
        """The narrower search for the utterances a session begins while it is behind real time (`shed_after_ms`):
        the mode's search keeping 1000 HMMs and 5 word exits a frame. Only the widths change: it is a second search
        over the same acoustic model, switched at an utterance's start, and the Gaussians and the lookahead belong
        to the acoustic model both share. On a slow host (2026-12-03 17:10; bench/fast_search.py's measure: the 13
        human clips and the reading in 50 ms chunks) the lean search took 0.234 CPU s per audio s clean and 0.312 at
        10 dB SNR, more than four sessions at 10 dB could get from two cores beside Whisper; this one took 0.132 and
        0.136, for 60 words of 184 wrong in the fast pass's own finals clean (lean: 36) and 153 against 148 at 10 dB
        (bench/README.md "Load shedding")."""
        return replace(self.search(), max_hmms=1000, max_words=5)


@dataclass(frozen=True)
class Search:
    """How much of its search pocketsphinx keeps per 10 ms frame: at most `max_hmms` active HMMs (`-maxhmmpf`) and
    `max_words` word exits (`-maxwpf`, -1: no cap), scoring `top_gaussians` Gaussians per mixture (`-topn`); and
    `lookahead_frames` (`-pl_window`), how many 10 ms frames a phone loop runs ahead of the word search to prune it:
    the word search, and so every partial text, lags the audio by that many frames."""

    max_hmms: int
    max_words: int
    top_gaussians: int
    lookahead_frames: int


# pocketsphinx's own defaults.
FULL_SEARCH = Search(max_hmms=30000, max_words=-1, top_gaussians=4, lookahead_frames=5)
# Beside Whisper. On the recorded human clips and the reading as the engine runs the fast pass (50 ms chunks, a
# partial look each, rescoring off; bench/fast_search.py): 0.106 CPU s per audio s where the full search took
# 0.150, for the same words clean (20.1 %) and one fewer wrong in noise; pruning further (3000 HMMs, 10 word exits;
# or scoring 2 Gaussians) saved little more and cost 3-7 words in a hundred.
# The phone loop looks one frame ahead instead of five (bench/README.md "The fast pass's search"): the word search,
# so every partial, lags the audio 10 ms instead of 50. In audio time the first words came 418 → 380 ms after the
# speech onset (mean), for less CPU (0.083 against 0.092 CPU s per audio s); the fast pass's own finals (only a
# fallback says them) got 36 words wrong of 184 clean against 38, 74 against 70 at 20 dB. Through the app the first
# interim came 377-383 → 322-329 ms p50 with one session, and with eight Whisper kept more of the finals.
LEAN_SEARCH = Search(max_hmms=4000, max_words=15, top_gaussians=4, lookahead_frames=1)


@dataclass(frozen=True)
class Endpointing:
    window_s: float
    ratio: float
    vad_mode: int


# Beside Whisper: 0.15 s with ratio 0.8 and VAD mode 3 (the most aggressive) took one real-time session from 628 to
# 354 ms speech start → first interim and from 842 to 262 ms end of speech → endpoint interim (p50, with 50 ms frames
# and partials and no rescoring; bench/README.md "Latency levers"); 0.12 s with ratio 0.75 (3 of 4 frames of 30 ms
# voiced) took them to 317 and 235 ms through the app with the same word errors. A pause of about 90 ms then ends an
# utterance; the two-pass recognizer hands the pieces of a sentence to Whisper together (merge_pause_ms), so its
# finals lose nothing by it.
LOW_LATENCY = Endpointing(window_s=0.12, ratio=0.75, vad_mode=3)
# The fast pass alone makes the finals, and short pieces cost pocketsphinx its language model's context: 10.3 % →
# 6.6 % word errors on the clean clips and 25.9 % → 19.0 % on the noisy ones with this window (tests/test_wer.py).
# A pause of about 270 ms ends an utterance.
SENTENCES = Endpointing(window_s=0.3, ratio=0.9, vad_mode=0)
