"""Build the embedded engine from its config: what the app runs behind /api/local/stream."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from server.engine.config import EngineConfig
from server.engine.types import Recognizer

if TYPE_CHECKING:
    from server.engine.sphinx import PocketsphinxRecognizer


def model_cache(config: EngineConfig) -> Path:
    return Path(config.model_cache) if config.model_cache else Path(sys.prefix) / "cache" / "live-stt"


def load_fast_pass(
    config: EngineConfig, *, mode: Literal["process", "thread"] = "process", workers: int | None = None
) -> PocketsphinxRecognizer:
    """pocketsphinx as the engine runs it: the decoder settings from `DecoderConfig.from_engine` (rescoring, the
    endpointer and the search as the mode wants, alone or beside Whisper). `mode`/`workers` choose where it decodes:
    worker processes for the app; one thread for measurements."""
    from server.engine.sphinx import DecoderConfig, PocketsphinxRecognizer

    return PocketsphinxRecognizer(
        DecoderConfig.from_engine(config),
        max_sessions=config.max_sessions,
        admit_behind_ms=config.admit_behind_ms,
        mode=mode,
        workers=workers if workers is not None else config.fast_workers,
    )


def load_engine(config: EngineConfig) -> Recognizer:
    """The engine `config` describes: the two-pass recognizer (pocketsphinx interims, Whisper finals) by default,
    the fast pass alone with `whisper=False`. Loading the models happens here (a second or two; the first run also
    assembles Whisper's model.bin): call it off the event loop. Raises ModelError for a missing or corrupted
    Whisper model."""
    fast = load_fast_pass(config)
    if not config.whisper:
        return fast
    from server.engine.accurate import whisper_process
    from server.engine.model import resolve_model
    from server.engine.silero import SileroDetector
    from server.engine.twopass import TwoPassRecognizer
    from server.engine.voice_runs import LooseVoiceDetector
    from server.engine.whisper import WhisperOptions

    cache = model_cache(config)
    model = resolve_model(config.whisper_model, cache)
    options = WhisperOptions(
        threads=config.whisper_threads,
        beam_size=config.whisper_beam,
        max_queue=config.whisper_queue,
        min_window_s=config.whisper_min_window_s,
    )
    accurate = whisper_process(model, options, download_root=str(cache / "downloads"), nice=config.whisper_nice)
    accurate.warm_up()
    return TwoPassRecognizer(
        fast,
        accurate,
        fallback_after_s=config.fallback_after_s,
        merge_ms=config.merge_pause_ms,
        speech=SileroDetector() if config.speech_pause_ms > 0 else None,
        pause_ms=config.speech_pause_ms,
        voice=LooseVoiceDetector(),
    )
