"""Database URLs without their secrets: read from the environment, shown masked.

params.yaml is tracked by git and DVC and printed by ``alphaline params``, so it may name the
environment variable that holds a URL but never hold a password itself. Every URL that is
printed or logged goes through :func:`mask_url` first.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from alphaline.errors import ConfigError

MASK = "***"
# Query parameters that carry a secret in the drivers people use (libpq, MySQL, MLflow).
SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "pwd", "secret", "token",
                               "access_token", "sslpassword"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _split(url: str):
    return urlsplit(url) if _SCHEME.match(url) else None


def has_secret(url: str) -> bool:
    """True when ``url`` carries a password in its user part or a secret query parameter."""
    parts = _split(url)
    if parts is None:
        return False
    if parts.password:
        return True
    return any(k.lower() in SECRET_QUERY_KEYS for k, _ in parse_qsl(parts.query,
                                                                    keep_blank_values=True))


def mask_url(url: str | None) -> str:
    """``url`` with any password (user part or query) replaced by ``***``; else unchanged."""
    if url is None:
        return "None"
    parts = _split(url)
    if parts is None or not has_secret(url):
        return url
    netloc = parts.netloc
    if parts.password:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = urlencode([(k, MASK if k.lower() in SECRET_QUERY_KEYS else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secrets(value: object) -> object:
    """``value`` with every string in it (through dicts, lists and tuples) URL-masked."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_secrets(v) for v in value)
    return value


def refuse_secret(key: str, url: str | None) -> None:
    """A URL written into params.yaml must not hold a password (ConfigError naming ``key``)."""
    if url is not None and has_secret(url):
        raise ValueError(
            f"{key} holds a password ({mask_url(url)}): params.yaml is tracked and printed; "
            f"put the URL in an environment variable and name it in {key}_env")


def url_from(key: str, literal: str | None, env_name: str | None, default: str) -> str:
    """The URL for ``key``: from the variable ``env_name`` when named (it must be set), else
    the literal from params.yaml, else ``default``."""
    if env_name is None:
        return literal or default
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise ConfigError(f"{key}_env names the environment variable {env_name}, which is not "
                          f"set: export it (a silent fallback to {mask_url(default)} would "
                          "start another, empty store)")
    return value
