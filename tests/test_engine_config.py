"""The engine's endpointer follows its mode unless the operator sets it."""

from __future__ import annotations

from server.engine.config import LOW_LATENCY, SENTENCES, EngineConfig
from server.engine.loader import load_fast_pass
from server.engine.sphinx import PocketsphinxRecognizer
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


def test_the_loader_gives_the_fast_pass_the_modes_endpointer() -> None:
    for whisper, expected in ((True, LOW_LATENCY), (False, SENTENCES)):
        fast = load_fast_pass(EngineConfig(whisper=whisper))
        assert isinstance(fast, PocketsphinxRecognizer)
        c = fast.config
        assert (c.vad_window_s, c.vad_ratio, c.vad_mode) == (expected.window_s, expected.ratio, expected.vad_mode)


def test_the_fast_pass_built_alone_defaults_to_whole_sentences() -> None:
    c = PocketsphinxRecognizer().config
    assert (c.vad_window_s, c.vad_ratio, c.vad_mode) == (SENTENCES.window_s, SENTENCES.ratio, SENTENCES.vad_mode)
