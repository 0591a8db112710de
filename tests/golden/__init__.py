"""Golden files of the PCM path: committed inputs and the reference (testkit/audio.py) outputs, listed in
data/manifest.json so the Python, Node and browser tests iterate over the same cases. See README.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

GOLDEN_DIR = Path(__file__).resolve().parent
DATA_DIR = GOLDEN_DIR / "data"
MANIFEST = DATA_DIR / "manifest.json"


@dataclass(frozen=True)
class ResampleCase:
    """One input signal at in_rate and the reference's PCM16 output at out_rate."""

    signal: str
    in_rate: int
    out_rate: int
    input: str
    output: str
    input_samples: int
    output_samples: int

    @property
    def id(self) -> str:
        return f"{self.signal}_in{self.in_rate}_out{self.out_rate}"


@dataclass(frozen=True)
class ConvertCase:
    """Float32 samples and their exact PCM16 conversion."""

    name: str
    input: str
    output: str
    samples: int


def load_manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text())
    return data


def resample_cases() -> list[ResampleCase]:
    cases = [ResampleCase(**entry) for entry in load_manifest()["resample"]]
    # Every golden check loops over these: over an emptied manifest it would pass having checked nothing.
    assert cases, f"{MANIFEST} lists no resample cases"
    return cases


def convert_cases() -> list[ConvertCase]:
    cases = [ConvertCase(**entry) for entry in load_manifest()["convert"]]
    assert cases, f"{MANIFEST} lists no conversion cases"
    return cases


def read_f32(name: str) -> npt.NDArray[np.float32]:
    """A raw little-endian float32 file from data/."""
    return np.fromfile(DATA_DIR / name, dtype="<f4").astype(np.float32)


def read_s16(name: str) -> npt.NDArray[np.int16]:
    """A raw little-endian int16 file from data/."""
    return np.fromfile(DATA_DIR / name, dtype="<i2").astype(np.int16)
