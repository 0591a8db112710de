"""The tests' import path for testkit.stack (the code lives in testkit/, so bench/ can use it without importing
tests/)."""

from testkit.stack import (
    APP_SECRET,
    PROVIDERS,
    SECRETS,
    TRUEBAR_PASSWORD,
    TRUEBAR_USER,
    WIRO_KEY,
    WIRO_SECRET,
    Stack,
    stack,
)

__all__ = [
    "APP_SECRET",
    "PROVIDERS",
    "SECRETS",
    "TRUEBAR_PASSWORD",
    "TRUEBAR_USER",
    "WIRO_KEY",
    "WIRO_SECRET",
    "Stack",
    "stack",
]
