"""The tests' import path for testkit.browsers (the code lives in testkit/, so bench/ can use it without importing
tests/)."""

from testkit.browsers import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    FAKE_WAV_URL,
    FIREFOX,
    FIREFOX_PREFS,
    WAV_MIC_HOOK,
    WAV_MIC_SCRIPT,
    launch,
    new_page,
)

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "FAKE_WAV_URL",
    "FIREFOX",
    "FIREFOX_PREFS",
    "WAV_MIC_HOOK",
    "WAV_MIC_SCRIPT",
    "launch",
    "new_page",
]
