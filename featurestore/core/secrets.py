"""Keeping secrets (storage keys, tokens, passwords in URIs) out of logs, errors and metadata."""

from __future__ import annotations

import logging
import re
from typing import Iterable, Mapping

REDACTED = "***"
_SECRET_KEY = re.compile(r"(key|secret|token|password|passwd|credential|sas|signature)", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_QUERY_SECRET = re.compile(r"(?P<name>[?&](?:sig|sv|se|sp|st|token|key|password|access_token)=)[^&\s]+",
                           re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """Return ``uri`` without the password or token in its user-info or query string.

    >>> redact_uri("http://alice:s3cret@mlflow:5000/")
    'http://alice:***@mlflow:5000/'
    """
    return redact_text(uri)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Mask URI credentials, secret query parameters and the given literal ``secrets`` in ``text``."""

    def userinfo(match: re.Match[str]) -> str:
        user = match.group("userinfo").split(":", 1)[0]
        hidden = f"{user}:{REDACTED}" if ":" in match.group("userinfo") else REDACTED
        return f"{match.group('scheme')}{hidden}@"

    text = _QUERY_SECRET.sub(lambda m: m.group("name") + REDACTED, _USERINFO.sub(userinfo, text))
    for secret in secrets or []:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def secret_values(*mappings: Mapping[str, str]) -> list[str]:
    """Return the values of secret-looking keys (``...key``, ``...TOKEN``, ``...PASSWORD``) in ``mappings``.

    Used to mask those values literally wherever they might be echoed (short values are
    skipped: masking them would garble messages more than it protects).
    """
    return sorted({str(v) for m in mappings for k, v in m.items() if _SECRET_KEY.search(k) and len(str(v)) >= 8},
                  key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """A logging filter that masks URI credentials and the given secret values in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True
