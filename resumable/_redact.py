"""Credentials out of sight: the one function that every shown location goes through."""

from __future__ import annotations

import re

MASK = "***"

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>`]*)")
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)
_PARAMETER = re.compile(r"(?P<name>[^=&;#?]*)=(?P<value>[^&;#]*)")


def redact(text: str) -> str:
    """Return *text* with every credential of the URLs in it replaced by ``***``.

    *text* is a URL, or any message that holds URLs (a driver's error, say). In each URL
    the password of ``user:password@`` goes, and so does the value of every query parameter
    whose name says it is a secret (``password``, ``sslpassword``, ``token``, ``api_key``,
    ``auth``, ...). The rest is unchanged, so the location stays recognisable.
    """
    return _URL.sub(_redacted, text)


def _redacted(found: re.Match[str]) -> str:
    # Punctuation after a URL in a sentence ("... at redis://h/0?password=x: refused") is not
    # the URL's.
    rest = found.group("rest").rstrip(".,:;!)]}")
    after = found.group("rest")[len(rest) :]
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    # The userinfo ends at the last "@" before the query: a password may hold "/" (base64).
    at = rest.rfind("@", 0, query_at)
    if at >= 0 and ":" in rest[:at]:
        rest = f"{rest[:at].partition(':')[0]}:{MASK}{rest[at:]}"
        query_at = rest.find("?") if "?" in rest else len(rest)
    head, query = rest[:query_at], rest[query_at:]
    return found.group("scheme") + head + _PARAMETER.sub(_parameter, query) + after


def _parameter(found: re.Match[str]) -> str:
    name = found.group("name")
    if _SECRET_NAME.search(name):
        return f"{name}={MASK}"
    return found.group(0)
