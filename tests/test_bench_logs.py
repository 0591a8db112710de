"""bench.realtime's --show lines read back (bench/window_replay.py, bench/per_recording.py): what one run printed is
what a later replay or count reads, whatever the final's text holds."""

from __future__ import annotations

from typing import Any

from bench.per_recording import differences
from bench.realtime import BYTES_PER_MS, FINAL_LINE, GAP_MS, Clip, Program, Result, final_spans, final_texts, score


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


def test_every_final_is_timed_from_its_last_word() -> None:
    clip = Clip("a.wav", onset_ms=1000, end_ms=5000, span=(0, 6000 * BYTES_PER_MS))
    prog = Program(b"", [clip], "one two three")

    def segment(final: bool, start: int, end: int, text: str) -> dict[str, Any]:
        tokens = [{"text": text, "startOffsetMs": 0, "endOffsetMs": end - start}]
        return {
            "type": "TEXT_SEGMENT",
            "textSegment": {"isFinal": final, "startTimeMs": start, "endTimeMs": end, "tokens": tokens},
        }

    start = 100.0
    events = [
        (start + 1.5, segment(False, 1000, 1400, "one")),
        (start + 4.3, segment(True, 1000, 1400, "one two")),  # held while the speaker went on: 2.9 s after
        (start + 5.6, segment(True, 2000, 4900, "three")),  # the clip's last: 0.7 s after its last word
        (start + 6.0, {"type": "STATUS", "status": "FINISHED"}),
    ]
    result = Result()
    score(prog, start, events, result)
    assert [round(ms) for ms in result.word_final_ms] == [2900, 700]
    assert [round(ms) for ms in result.final_ms] == [600]  # from the clip's end of speech, its last final only
    assert result.errors == 0 and result.dropped == 0
