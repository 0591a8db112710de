"""The embedded engine's settings and their defaults: written here once, read by settings.py (from the
environment), the loader and the emulators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    """Empty model paths mean the US-English model shipped in the pocketsphinx wheel."""

    # Concurrent sessions; more get RecognizerBusy (a "busy" ERROR on the socket). Each pocketsphinx decoder holds
    # its own copy of the model (about 95 MB resident).
    max_sessions: int = 4
    hmm: str = ""
    lm: str = ""
    dictionary: str = ""
    # A JSGF grammar replaces the language model.
    jsgf: str = ""
    # Seconds of non-speech that end an utterance (pocketsphinx's Endpointer window): the shortest pause that ends
    # an utterance, and how late its final comes.
    vad_window_s: float = 0.3
    # Rescoring passes at the end of each utterance: on the test clips word errors fall from 4 % to 0 % for about
    # 60 ms more per final (bench/README.md), so they are on by default.
    fwdflat: bool = True
    bestpath: bool = True

    # The accurate pass (Whisper through faster-whisper/CTranslate2) for finals; False: the fast pass alone.
    whisper: bool = True
    # "base": Whisper base from the two pinned model wheels (no network). Otherwise a faster-whisper model name
    # (downloaded by faster-whisper on first use) or a local folder holding a CTranslate2 model.
    whisper_model: str = "base"
    # CTranslate2 threads for the one accurate job that runs at a time: this machine's two cores.
    whisper_threads: int = 2
    # Utterances waiting for (or in) the accurate pass across all sessions; beyond it, finals fall back at once.
    whisper_queue: int = 4
    # The encoder's window: the utterance plus 2 s, at least this many seconds (at most Whisper's 30).
    whisper_min_window_s: float = 10.0
    # End of speech → the latest an accurate final may come; later, the fast pass's text is the final (with a
    # WARNING to the client).
    fallback_after_s: float = 2.0
    # Where the model from the wheels is assembled; empty: `cache/live-stt` inside the Python environment
    # (sys.prefix, the project's .venv), so removing the environment removes it too.
    model_cache: str = ""
