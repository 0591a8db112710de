"""Settings built at the entry point: the .env file as python-dotenv reads it, `~` in a path expanded there."""

from __future__ import annotations

import os
import pwd
from dataclasses import replace
from pathlib import Path
from string import ascii_lowercase

import pytest
from dotenv import dotenv_values

from server.engine.config import EngineConfig
from server.providers.local import LocalTokens
from server.security import load_signed, signed
from server.settings import Settings, SettingsError, read_dotenv

DOTENV = """\
# a comment line

export A=1
B='two words'
C="x=y"
D=v # note
E="quoted # not a comment"
F='single quotes keep \\n as written'
G="double quotes read \\n as a line break"
H=${HOME}/x
   I = spaced
J
broken line
K=
"""


def test_a_dotenv_file_reads_as_python_dotenv_reads_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(DOTENV, encoding="utf-8")
    read = read_dotenv(env)
    assert read == {
        "A": "1",
        "B": "two words",
        "C": "x=y",
        "D": "v",
        "E": "quoted # not a comment",
        "F": "single quotes keep \\n as written",
        "G": "double quotes read \n as a line break",
        # Not interpolated: nothing is read from the environment, and a secret holding `${` is taken as is.
        "H": "${HOME}/x",
        "I": "spaced",
        "K": "",
    }
    # A name without `=` (J) sets nothing; a line python-dotenv cannot parse is skipped, as it skips it.
    expected = {k: v for k, v in dotenv_values(env, interpolate=False).items() if v is not None}
    assert read == expected


def test_no_dotenv_file_sets_nothing_and_one_not_utf8_is_refused(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / "missing") == {}
    assert read_dotenv(tmp_path) == {}
    latin = tmp_path / ".env"
    latin.write_bytes("APP_PASSWORD=caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SettingsError, match="not UTF-8"):
        read_dotenv(latin)


def test_a_whisper_model_path_under_home_is_expanded_from_the_environment_given() -> None:
    def model(env: dict[str, str]) -> str:
        return Settings.from_env(env).local.engine.whisper_model

    assert model({"HOME": "/home/someone", "LOCAL_WHISPER_MODEL": "~/models/whisper-small"}) == (
        "/home/someone/models/whisper-small"
    )
    assert model({"HOME": "/home/someone", "LOCAL_WHISPER_MODEL": "~"}) == "/home/someone"
    # Without HOME in the mapping, this user's home from the password database (as a shell does).
    assert model({"LOCAL_WHISPER_MODEL": "~/m"}) == str(Path(pwd.getpwuid(os.getuid()).pw_dir) / "m")
    # Names and other paths as they are; the default too.
    assert model({"HOME": "/home/someone", "LOCAL_WHISPER_MODEL": "small.en"}) == "small.en"
    assert model({"HOME": "/home/someone", "LOCAL_WHISPER_MODEL": "./models/~x"}) == "./models/~x"
    assert model({"HOME": "/home/someone"}) == EngineConfig().whisper_model


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("LOCAL_HMM", "hmm"),
        ("LOCAL_LM", "lm"),
        ("LOCAL_DICT", "dictionary"),
        ("LOCAL_JSGF", "jsgf"),
        ("LOCAL_MODEL_CACHE", "model_cache"),
    ],
)
def test_every_engine_path_setting_expands_a_leading_tilde(variable: str, field: str) -> None:
    engine = Settings.from_env({"HOME": "/home/someone", variable: "~/models/x"}).local.engine
    assert getattr(engine, field) == "/home/someone/models/x"
    assert getattr(Settings.from_env({variable: "/srv/x"}).local.engine, field) == "/srv/x"


def test_a_guessable_secret_key_is_refused() -> None:
    """One grant signed with a short APP_SECRET_KEY gives the key away to offline guessing, and with it the power to
    forge grants (any session, any client: past the rate limit, the spent check and the caps)."""
    minted, _ = LocalTokens("zq", 300).mint("real-session", client="10.0.0.9")
    pairs = (a + b for a in ascii_lowercase for b in ascii_lowercase)
    key = next(k for k in pairs if load_signed(signed(k, "local-stream"), minted) is not None)
    forged, _ = LocalTokens(key, 300).mint("forged-session", client="someone-else")
    assert LocalTokens("zq", 300).verify(forged) is not None
    for short in ("zq", "x" * 31):
        with pytest.raises(SettingsError, match="APP_SECRET_KEY must be at least 32 characters") as refused:
            Settings.from_env({"APP_SECRET_KEY": short})
        assert short not in str(refused.value)
        # An app embedded with create_app(Settings(...)) is held to it too.
        with pytest.raises(SettingsError, match=r"at least 32 characters \(Settings.secret_key\)"):
            Settings(secret_key=short)
        with pytest.raises(SettingsError, match="at least 32 characters"):
            replace(Settings(), secret_key=short)
    assert Settings.from_env({"APP_SECRET_KEY": "x" * 32}).secret_key == "x" * 32
    assert len(Settings.from_env({}).secret_key) >= 32  # the random key made when none is given


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WIRO_SOCKET_URL", "wss://[::1/v1"),
        ("WIRO_SOCKET_URL", "https://socket.wiro.ai/v1"),
        ("WIRO_SOCKET_URL", "wss://socket.wiro.ai:99999/v1"),
        ("TRUEBAR_STT_WS_URL", "wss://[::1/api/pipelines/stream"),
        ("TRUEBAR_STT_WS_URL", "wss:///api/pipelines/stream"),
    ],
)
def test_a_socket_url_the_page_cannot_be_sent_to_is_refused_at_start(variable: str, value: str) -> None:
    """Every response names the providers' socket origins in its CSP: a malformed one (a bracket left open) made
    each of them, /healthz too, a 500 from the first request on."""
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
    assert Settings.from_env({variable: "wss://[::1]:8443/v1"})


def test_a_wiro_key_with_a_character_no_header_can_carry_is_refused_at_start_without_it() -> None:
    """The key goes in a header (printable ASCII): a zero-width space pasted with it made every Wiro mint a 500. The
    message names the variable, never the value. The secret only keys the signature, as UTF-8: any text will do."""
    with pytest.raises(SettingsError, match="WIRO_API_KEY") as refused:
        Settings.from_env({"WIRO_API_KEY": "k3y-\u200b"})
    assert "k3y" not in str(refused.value)
    assert Settings.from_env({"WIRO_API_KEY": "k3y-1", "WIRO_API_SECRET": "s\u00e9cret\u200b"}).wiro.api_secret


def test_the_open_captions_shares_per_client_are_read_and_at_least_one() -> None:
    assert Settings.from_env({}).captions_max_shares_per_client == 10
    assert Settings.from_env({"APP_CAPTIONS_MAX_SHARES_PER_CLIENT": "3"}).captions_max_shares_per_client == 3
    with pytest.raises(SettingsError, match="APP_CAPTIONS_MAX_SHARES_PER_CLIENT"):
        Settings.from_env({"APP_CAPTIONS_MAX_SHARES_PER_CLIENT": "0"})
