"""A bounded load test: many concurrent sessions through the app's grants against both emulators and the offline
engine (all on the scripted recognizer), for a fixed time; every session must end with its full transcript.

The scripted recognizer makes the transcript a function of the audio length alone (one word of DEFAULT_SCRIPT per
`MS_PER_WORD` of audio, cycling), so "full" is exact: any lost frame, dropped message or mixed-up session shows as
a missing or wrong word. bench/load.py runs the same code bigger and records the figures in bench/README.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from testkit.load import load_stack, run_load
from testkit.stack import PROVIDERS, Stack


@pytest.fixture(scope="module")
def load_app() -> Iterator[Stack]:
    with load_stack() as s:
        yield s


PER_PROVIDER = 8
DURATION_S = 4.0
AUDIO_S = 2.1  # 8 words at 250 ms a word, 100 ms spare so resampling edges cannot cost the last one
SPEED = 4.0


def test_concurrent_sessions_for_a_fixed_time_all_complete(load_app: Stack) -> None:
    result = asyncio.run(run_load(load_app.url, PER_PROVIDER, DURATION_S, AUDIO_S, SPEED))
    assert not result.errors, result.errors[:5]
    assert result.lost_words == 0
    assert all(o.complete for o in result.outcomes)
    by_provider = {p: sum(1 for o in result.outcomes if o.provider == p) for p in PROVIDERS}
    # Every worker finished at least one session: 8 concurrent per provider.
    assert all(n >= PER_PROVIDER for n in by_provider.values()), by_provider
    assert load_app.wiro is not None
    assert load_app.wiro.state.wiro.active_count() == 0
    assert load_app.wiro.state.wiro.internal_errors == []
