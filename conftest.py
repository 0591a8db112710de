"""Suite-wide: every log record of the whole run (tests/ and playwright/) is searched for the known long-lived
secrets the shared stack is configured with (testkit/stack.py). tests/test_no_secrets.py goes further for
one scenario set (responses, headers, uvicorn's own loggers, refresh tokens); this catches a leak from any test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from testkit.stack import SECRETS


class SecretWatch(logging.Handler):
    """Checks each record as it is emitted (nothing is stored but the leaks)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        for secret in SECRETS:
            if secret in text:
                # Where and what, with every secret starred out: enough to find the leak from the report alone.
                shown = text
                for known in SECRETS:
                    shown = shown.replace(known, f"<secret #{SECRETS.index(known)}>")
                test = os.environ.get("PYTEST_CURRENT_TEST", "outside a test")
                self.leaks.append(f"{record.name}: secret #{SECRETS.index(secret)} in {record.levelname} record")
                self.leaks.append(f"  during {test}: {shown[:400]}")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_record() -> Iterator[None]:
    watch = SecretWatch()
    root = logging.getLogger()
    level = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(watch)
        root.setLevel(level)
    assert not watch.leaks, watch.leaks[:10]
