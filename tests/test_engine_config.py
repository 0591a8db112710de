"""The engine's settings as the fast pass gets them: the endpointer, rescoring and search follow the mode (alone or
beside Whisper) unless the operator sets them."""

from __future__ import annotations

import pytest

from server.engine.config import FULL_SEARCH, LEAN_SEARCH, LOW_LATENCY, SENTENCES, Endpointing, EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.sphinx import DecoderConfig, PocketsphinxRecognizer
from server.settings import Settings


def test_beside_whisper_the_endpointer_is_the_low_latency_one_and_alone_the_sentence_one() -> None:
    assert EngineConfig().endpointer() == LOW_LATENCY
    assert EngineConfig(whisper=False).endpointer() == SENTENCES
    assert LOW_LATENCY.window_s < SENTENCES.window_s


def test_a_set_window_wins_in_either_mode_and_the_rest_keep_the_modes_defaults() -> None:
    for whisper in (True, False):
        e = EngineConfig(whisper=whisper, vad_window_s=0.5).endpointer()
        base = LOW_LATENCY if whisper else SENTENCES
        assert (e.window_s, e.ratio, e.vad_mode) == (0.5, base.ratio, base.vad_mode)


def test_settings_leave_the_window_to_the_mode_unless_the_variable_is_set() -> None:
    assert Settings.from_env({}).local.engine.vad_window_s is None
    assert Settings.from_env({"LOCAL_VAD_WINDOW_S": "0.4"}).local.engine.vad_window_s == 0.4


def endpointing(d: DecoderConfig) -> Endpointing:
    return Endpointing(window_s=d.vad_window_s, ratio=d.vad_ratio, vad_mode=d.vad_mode)


def test_beside_whisper_the_fast_pass_is_quick_and_lean_unless_told_otherwise() -> None:
    d = DecoderConfig.from_engine(EngineConfig())
    assert endpointing(d) == LOW_LATENCY
    assert (d.fwdflat, d.bestpath, d.search) == (False, False, LEAN_SEARCH)
    d = DecoderConfig.from_engine(EngineConfig(rescoring_with_whisper=True))
    assert (d.fwdflat, d.bestpath, d.search) == (True, True, LEAN_SEARCH)
    d = DecoderConfig.from_engine(EngineConfig(rescoring_with_whisper=True, fwdflat=False))
    assert (d.fwdflat, d.bestpath) == (False, True)
    assert DecoderConfig.from_engine(EngineConfig(lean_search=False)).search == FULL_SEARCH


def test_alone_the_fast_pass_makes_sentences_rescored_as_configured_with_the_full_search() -> None:
    d = DecoderConfig.from_engine(EngineConfig(whisper=False))
    assert endpointing(d) == SENTENCES
    assert (d.fwdflat, d.bestpath, d.search) == (True, True, FULL_SEARCH)
    d = DecoderConfig.from_engine(EngineConfig(whisper=False, bestpath=False, lean_search=True))
    assert (d.fwdflat, d.bestpath, d.search) == (True, False, FULL_SEARCH)
    d = DecoderConfig.from_engine(EngineConfig(whisper=False, fwdflat=False, rescoring_with_whisper=True))
    assert (d.fwdflat, d.bestpath) == (False, True)


def test_the_models_window_and_partial_looks_pass_through() -> None:
    config = EngineConfig(hmm="h", lm="l", dictionary="d", jsgf="g", vad_window_s=0.5, vad_mode=1, partial_every_ms=80)
    d = DecoderConfig.from_engine(config)
    assert (d.hmm, d.lm, d.dictionary, d.jsgf, d.partial_every_ms) == ("h", "l", "d", "g", 80)
    assert endpointing(d) == Endpointing(window_s=0.5, ratio=LOW_LATENCY.ratio, vad_mode=1)


@pytest.mark.parametrize(
    "config",
    [
        EngineConfig(),
        EngineConfig(whisper=False),
        EngineConfig(rescoring_with_whisper=True),
        EngineConfig(lean_search=False),
        EngineConfig(whisper=False, fwdflat=False, vad_window_s=0.4, partial_every_ms=100),
    ],
)
def test_the_loader_builds_the_fast_pass_from_that_mapping(config: EngineConfig) -> None:
    fast = load_fast_pass(config)  # nothing starts before open()
    assert isinstance(fast, PocketsphinxRecognizer)
    assert fast.config == DecoderConfig.from_engine(config)
    assert (fast.max_sessions, fast.mode) == (config.max_sessions, "process")


def test_the_loader_refuses_a_pool_without_sessions() -> None:
    with pytest.raises(ValueError, match="max_sessions must be at least 1"):
        load_fast_pass(EngineConfig(max_sessions=0))


def test_the_fast_pass_built_alone_is_the_engines_fast_pass_without_whisper() -> None:
    """The emulators and tools build it with its defaults: whole sentences, rescored, the full search."""
    assert PocketsphinxRecognizer().config == DecoderConfig() == DecoderConfig.from_engine(EngineConfig(whisper=False))
    assert endpointing(DecoderConfig()) == SENTENCES
