# ruff: noqa: ASYNC230, SIM105, SIM115 - the vendor's code, kept as published (blocking reads, try/except/pass)
"""The Python example of Wiro's Realtime Speech to Text page, as close to verbatim as possible.

Changes from the vendor's code, so it runs in tests: the socket URL and token come from the environment
(WIRO_SOCKET_URL, WIRO_SOCKET_TOKEN); a raw PCM file (WIRO_PCM_FILE: s16le, 24 kHz, mono) replaces pyaudio's
microphone, read in the same 4800-sample chunks; after the file the client sends task_session_end (the page's
endSession); asyncio.run is under a __main__ guard.
"""

import asyncio
import json
import os

import websockets

SOCKET_TOKEN = os.environ['WIRO_SOCKET_TOKEN']
SAMPLE_RATE = 24000
CHUNK = 4800  # 200ms


async def realtime_stt_session():
    uri = os.environ['WIRO_SOCKET_URL']
    async with websockets.connect(uri) as ws:
        await ws.send(json.dumps({
            'type': 'task_info',
            'tasktoken': SOCKET_TOKEN
        }))

        mic = open(os.environ['WIRO_PCM_FILE'], 'rb')  # stands in for pa.open(...)

        is_listening = False
        full_transcript = []

        async def send_audio():
            while True:
                if is_listening:
                    data = mic.read(CHUNK * 2)
                    if not data:
                        await ws.send(json.dumps({
                            'type': 'task_session_end',
                            'tasktoken': SOCKET_TOKEN
                        }))
                        return
                    token = SOCKET_TOKEN.encode() + b'|'
                    await ws.send(token + data)
                await asyncio.sleep(0.01)

        async def receive():
            nonlocal is_listening
            async for msg in ws:
                data = json.loads(msg)
                t = data['type']
                if t == 'task_stream_ready':
                    print('Session ready — sending audio')
                    is_listening = True
                elif t == 'task_stream_end':
                    print('Transcription stream ended')
                    is_listening = False
                elif t == 'task_cost':
                    print(f'Cost: {data["cumulativeCost"]}')
                elif t == 'task_output':
                    m = data.get('message', '')
                    if m.startswith('TRANSCRIPT_USER:'):
                        text = m[16:]
                        full_transcript.append(text)
                        print(f'Transcript: {text}')
                elif t in ('task_end', 'task_postprocess_end'):
                    print('Session ended')
                    print(f'Full: {" ".join(full_transcript)}')
                    break

        sender = asyncio.create_task(send_audio())
        try:
            await receive()
        finally:
            sender.cancel()
            try:
                await sender
            except asyncio.CancelledError:
                pass
            mic.close()


if __name__ == '__main__':
    asyncio.run(realtime_stt_session())
