"""Constants shared by the tests: a token and a configuration every check accepts."""

from __future__ import annotations

from typing import Any

TOKEN = "test-token-" + "x" * 24
STRONG_KEY = "8c1f0f6b3b1d4e0a9f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2910"

#: A configuration that every config.* and cookies.* check accepts.
GOOD_CONFIG: dict[str, Any] = {
    "SECRET_KEY": STRONG_KEY,
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "PREFERRED_URL_SCHEME": "https",
    "TRUSTED_HOSTS": ["localhost", "127.0.0.1"],
    "PRODREADY_TOKEN": TOKEN,
}
