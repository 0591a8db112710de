"""Build the embedded engine from its config: what the app runs behind /api/local/stream."""

from __future__ import annotations

from server.engine.config import EngineConfig
from server.engine.types import Recognizer


def load_engine(config: EngineConfig) -> Recognizer:
    """The engine `config` describes. Loading the model happens here (about a second): call it off the event loop."""
    from server.engine.sphinx import PocketsphinxRecognizer

    return PocketsphinxRecognizer(
        hmm=config.hmm,
        lm=config.lm,
        dict=config.dictionary,
        jsgf=config.jsgf,
        vad_window_s=config.vad_window_s,
        fwdflat=config.fwdflat,
        bestpath=config.bestpath,
        max_sessions=config.max_sessions,
    )
