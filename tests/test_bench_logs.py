"""bench.realtime's --show lines read back (bench/window_replay.py, bench/per_recording.py): what one run printed is
what a later replay or count reads, whatever the final's text holds."""

from __future__ import annotations

from bench.per_recording import differences
from bench.realtime import FINAL_LINE, GAP_MS, final_spans, final_texts


def test_final_lines_read_back_as_printed() -> None:
    texts = ["Ask not (what) your country: 5, 5.", "", "then: 'done' - came at 3 (came at 9)"]
    lines = [
        FINAL_LINE.format("session from jfk.wav", 1300, 2400, 3000.4, texts[0]),
        FINAL_LINE.format("session from jfk.wav", 2400, 2500, 3100, texts[1]),
        "a line of something else\n",
        FINAL_LINE.format("session from sonnet.wav", 1000, 9000, 9999, texts[2]) + "\n",
    ]
    assert final_texts(lines) == {"jfk.wav": texts[:2], "sonnet.wav": texts[2:]}
    assert final_spans(lines) == {
        "jfk.wav": [(1300 - GAP_MS, 2400 - GAP_MS), (2400 - GAP_MS, 2500 - GAP_MS)],
        "sonnet.wav": [(0, 9000 - GAP_MS)],
    }


def test_differences_name_each_stretch_with_its_context() -> None:
    assert differences("one two three four five", "one two three for five six") == [
        "replace [one two three] 'four' -> 'for'",
        "insert [three four five] '' -> 'six'",
    ]
    assert differences("same words", "Same words.") == []
