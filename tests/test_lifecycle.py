"""Sessions release what they hold however they end: one process, the in-memory state."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from server.app import create_app
from server.emulators.scripted import ScriptedRecognizer
from server.providers.local import LOCAL_TAG
from server.sessions import ENDS_PER_SESSION
from server.settings import Settings
from server.state import MemoryState
from testkit.live import running
from testkit.truebar_client import config_message, transcribe_truebar

PCM = b"\x00\x01" * 16_000  # one second of 16 kHz audio


def mint(url: str) -> httpx.Response:
    return httpx.post(url + "/api/sessions", json={"provider": "local"})


def test_eight_sessions_in_a_row_without_an_end_call_are_all_admitted() -> None:
    app = create_app(Settings(max_sessions_per_client=4), local_recognizer=ScriptedRecognizer(ms_per_word=100))
    with running(app) as url:
        finals = []
        for _ in range(8):
            r = mint(url)
            assert r.status_code == 200, r.text
            g = r.json()
            result = asyncio.run(transcribe_truebar(g["ws_url"], g["token"], PCM, tag=LOCAL_TAG))
            assert result.status_names[-1] == "FINISHED", result.errors
            finals.append(result.text)
    assert all(finals)


def test_an_abrupt_close_frees_the_slot() -> None:
    # Engine of 2: one client may hold 1 (its cap stays below the engine's size).
    app = create_app(Settings(max_sessions_per_client=4), local_recognizer=ScriptedRecognizer(max_sessions=2))
    with running(app) as url:
        g = mint(url).json()
        refused = mint(url)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_sessions"

        async def open_then_drop() -> int:
            ws = await websockets.connect(f"{g['ws_url']}?access_token={g['token']}")
            await ws.recv()  # INITIALIZED
            await ws.send(config_message(LOCAL_TAG))
            await ws.send(PCM[:3200])
            still_full = mint(url).status_code
            # No EOS, no close frame: the TCP connection just goes away.
            ws.transport.abort()
            return still_full

        assert asyncio.run(open_then_drop()) == 429
        for _ in range(100):
            r = mint(url)
            if r.status_code == 200:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert r.status_code == 200, r.text


def test_an_idle_socket_is_closed_with_an_error_naming_the_reason() -> None:
    app = create_app(Settings(local_idle_timeout_s=0.5), local_recognizer=ScriptedRecognizer())
    with running(app) as url:
        g = mint(url).json()

        async def idle() -> tuple[list[dict[str, object]], int | None]:
            async with websockets.connect(f"{g['ws_url']}?access_token={g['token']}") as ws:
                await ws.send(config_message(LOCAL_TAG))
                messages = []
                with contextlib.suppress(ConnectionClosed):
                    async for raw in ws:
                        messages.append(json.loads(raw))
                return messages, ws.close_code

        messages, code = asyncio.run(asyncio.wait_for(idle(), 10))
    errors = [m for m in messages if m.get("type") == "ERROR"]
    assert len(errors) == 1 and "LOCAL_IDLE_TIMEOUT_S" in json.dumps(errors[0]), messages
    assert code is not None and code != 1000
    statuses = [m.get("status") for m in messages if m.get("type") == "STATUS"]
    assert statuses == ["INITIALIZED", "CONFIGURED"]


def test_the_end_endpoint_says_whether_it_ended_something() -> None:
    app = create_app(Settings(), local_recognizer=ScriptedRecognizer())
    with running(app) as url:
        g = mint(url).json()
        end = f"{url}/api/sessions/local/{g['session_id']}/end"
        assert httpx.post(end).json() == {"ended": True}  # an unused grant: its reservation is released
        assert httpx.post(end).json() == {"ended": False}
        assert httpx.post(f"{url}/api/sessions/local/nonexistent/end").json() == {"ended": False}
        # An id no session of this app could have, of any length, is stored nowhere (it was kept as a spent grant
        # for the grants' lifetime: memory anyone could fill).
        spent = app.state.shared.sizes()["spent"]
        for i in range(3):
            assert httpx.post(f"{url}/api/sessions/local/{'x' * 20_000}{i}/end").json() == {"ended": False}
        assert app.state.shared.sizes()["spent"] == spent

        async def refused() -> int:
            try:
                async with websockets.connect(f"{g['ws_url']}?access_token={g['token']}"):
                    return 101
            except websockets.InvalidStatus as exc:
                return exc.response.status_code

        # An ended grant can no longer open a stream.
        assert asyncio.run(refused()) == 401


def test_ends_are_rate_limited_per_client_with_room_for_each_session_a_client_may_mint() -> None:
    """Each end of an unused grant is kept as a spent grant for the grants' lifetime: without a bound, one client could
    fill the table with well-formed ids of sessions it never had."""
    app = create_app(Settings(session_rate_per_min=2), local_recognizer=ScriptedRecognizer())
    with running(app) as url:
        answers = [httpx.post(f"{url}/api/sessions/local/{i:022d}/end") for i in range(ENDS_PER_SESSION * 2 + 1)]
    assert [r.status_code for r in answers] == [200] * (ENDS_PER_SESSION * 2) + [429]
    assert answers[-1].json()["error"]["code"] == "rate_limited" and int(answers[-1].headers["retry-after"]) >= 1


def test_the_memory_ledger_forgets_clients_whose_entries_lapsed() -> None:
    now = [1000.0]
    state = MemoryState(clock=lambda: now[0])

    async def scenario() -> dict[str, int]:
        for i in range(5000):
            await state.ledger.admit(f"local:10.0.{i // 250}.{i % 250}", f"local/{i}", 3, 60.0)
            await state.spent.spend(f"g{i}", now[0] + 60)
        now[0] += 61
        for i in range(2000):
            await state.ledger.admit("local:10.9.9.9", f"local/x{i}", 10_000, 1.0)
        return state.sizes()

    sizes = asyncio.run(scenario())
    # Pruning runs as the table is used: every lapsed client and spent grant is gone, only the live one remains.
    assert sizes["scopes"] == 1 and sizes["spent"] == 0
