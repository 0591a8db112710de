# The Python server-side quickstart from the Truebar Streaming STT guide (seed 000_b728e31b84009a2c), copied
# verbatim; only its line breaks and indentation were restored. tests/test_seed_clients_truebar.py runs it.
# ruff: noqa
import asyncio
import json
import os

import aiohttp
import soundfile as sf
import websockets


async def fetch_token(session: aiohttp.ClientSession) -> str:
    payload = {
        "grant_type": "password",
        "username": os.environ["TRUEBAR_USERNAME"],
        "password": os.environ["TRUEBAR_PASSWORD"],
        "client_id": os.getenv("TRUEBAR_CLIENT_ID", "truebar-client"),
    }
    async with session.post(os.environ["TRUEBAR_AUTH_URL"], data=payload) as resp:
        resp.raise_for_status()
        data = await resp.json()
        return data["access_token"]


def tokens_to_text(tokens: list[dict]) -> str:
    output, prev_right = [], False
    for token in tokens or []:
        text = token.get("text", "")
        if not text:
            continue
        left = bool(token.get("isLeftHanded"))
        if output and not prev_right and not left:
            output.append(" ")
        output.append(text)
        prev_right = bool(token.get("isRightHanded"))
    return "".join(output)


async def main() -> None:
    async with aiohttp.ClientSession() as session:
        token = await fetch_token(session)

        headers = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(
            os.environ["TRUEBAR_STT_WS_URL"],
            additional_headers=headers,
        ) as ws:
            configured = asyncio.Event()
            pcm, sample_rate = sf.read("sample.wav", dtype="int16")
            assert sample_rate == 16_000

            async def sender() -> None:
                await configured.wait()
                await ws.send(json.dumps({
                    "type": "CONFIG",
                    "pipeline": [
                        {
                            "task": "ASR",
                            "exceptionHandlingPolicy": "THROW",
                            "config": {
                                "tag": os.getenv("TRUEBAR_ASR_TAG", "KALDI:en-US:*:*"),
                                "parameters": {"enableInterims": True},
                            },
                        }
                    ],
                }))

                chunk_samples = 3200
                for start in range(0, len(pcm), chunk_samples):
                    await ws.send(pcm[start:start + chunk_samples].tobytes())

                await ws.send(json.dumps({"type": "EOS", "lockSession": False}))

            async def receiver() -> None:
                async for message in ws:
                    if isinstance(message, bytes):
                        continue

                    msg = json.loads(message)
                    if msg["type"] == "STATUS":
                        print("STATUS:", msg["status"])
                        if msg["status"] in {"INITIALIZED", "CONFIG_REQUIRED", "CONFIGURED"}:
                            configured.set()
                        if msg["status"] == "FINISHED":
                            break
                    elif msg["type"] == "TEXT_SEGMENT":
                        print(tokens_to_text(msg["textSegment"]["tokens"]))
                    elif msg["type"] == "ERROR":
                        raise RuntimeError(f"Pipeline error: {msg}")

            await asyncio.gather(sender(), receiver())


if __name__ == "__main__":
    asyncio.run(main())
