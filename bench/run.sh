#!/usr/bin/env bash
# Every benchmark, one after the other (they share two cores: never in parallel). Prints Markdown; the recorded
# results live in bench/README.md with the command and machine that made them. About 25 minutes in all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
echo "## Resampler"; node bench/resampler.mjs
echo "## Embedded engine"; "$PY" -m bench.recognizer --max-sessions 8
echo "## Two-pass engine"; "$PY" -m bench.twopass
echo "## Load"; "$PY" -m bench.load --per-provider 20 --duration 60 --audio 10.1 --speed 2
echo "## Load on two processes sharing Redis"; "$PY" -m bench.load --per-provider 10 --duration 60 --audio 10.1 --speed 2 --processes 2
echo "## Minting"; "$PY" -m bench.mint --duration 10 --concurrency 8
if [ -f bench/latency.py ]; then echo "## Latency in the browser"; "$PY" -m bench.latency; fi
echo "## Saved transcripts"; "$PY" -m bench.transcript_store
echo "## Shared captions"; "$PY" -m bench.captions --viewers 200 --duration 20 --redis
