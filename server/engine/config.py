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
