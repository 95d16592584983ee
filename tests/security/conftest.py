"""Fixtures of the security tests: the Telegram adapter's emulator and fake Bot API."""

from tests.telegram.conftest import emulator, fake

__all__ = ["emulator", "fake"]
