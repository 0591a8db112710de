"""A backend using the mint endpoint itself: mint a grant, connect with its token, stream a WAV, send EOS, print the
finals, close. Speaks the Truebar stream protocol, so it works for the offline engine and for Truebar alike.

    .venv/bin/python examples/backend_stream.py --url http://127.0.0.1:8000 --wav speech-16k.wav [--provider local]

The WAV must be 16-bit mono at the grant's sample rate (16 kHz). Only httpx and websockets are needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import wave

import httpx
import websockets


def read_wav(path: str, rate: int) -> bytes:
    with wave.open(path) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (rate, 1, 2):
            raise SystemExit(f"{path}: need 16-bit mono at {rate} Hz")
        return w.readframes(w.getnframes())


async def stream(url: str, wav: str, provider: str) -> int:
    # 1. Mint: a short-lived grant. Each grant opens one stream; mint another to reconnect.
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post("/api/sessions", json={"provider": provider})
        if r.status_code != 200:
            print(f"mint refused: {r.status_code} {r.text}", file=sys.stderr)
            return 1
        grant = r.json()
    pcm = read_wav(wav, grant["sample_rate"])
    frame_bytes = grant["frame_samples"] * 2  # PCM16: two bytes a sample

    # 2. Connect with the token (in the URL: the protocol browsers can speak too).
    async with websockets.connect(f"{grant['ws_url']}?access_token={grant['token']}", max_size=None) as ws:
        assert json.loads(await ws.recv())["status"] == "INITIALIZED"
        stage = {"task": "ASR", "exceptionHandlingPolicy": "THROW", "config": {"tag": grant["tag"]}}
        await ws.send(json.dumps({"type": "CONFIG", "pipeline": [stage]}))

        async def send() -> None:
            # 3. Stream binary PCM frames (a live source would pace them in real time; a file need not), then EOS.
            for start in range(0, len(pcm), frame_bytes):
                await ws.send(pcm[start : start + frame_bytes])
            await ws.send(json.dumps({"type": "EOS", "lockSession": False}))

        sender = asyncio.create_task(send())
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "ERROR":
                    print(f"error: {msg.get('error')}", file=sys.stderr)
                    return 1
                if msg.get("type") == "TEXT_SEGMENT" and msg["textSegment"]["isFinal"]:
                    print(" ".join(t["text"] for t in msg["textSegment"]["tokens"] if t.get("text")), flush=True)
                if msg.get("status") == "FINISHED":
                    break  # every final has arrived
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    # 4. Leaving the block closes the socket: that alone frees the engine's slot (no end call needed).
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--wav", required=True)
    parser.add_argument("--provider", default="local", choices=["local", "truebar"])
    args = parser.parse_args()
    return asyncio.run(stream(args.url, args.wav, args.provider))


if __name__ == "__main__":
    sys.exit(main())
