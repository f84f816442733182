"""URLs as they may be recorded: never with a credential."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# query parameters that may carry a credential; never recorded
SECRET_PARAMS = frozenset({"access_token", "token", "api_key", "apikey", "key", "sig", "signature", "jwt",
                           "client_secret", "password", "os_password", "X-Amz-Signature"})


def public_url(url: str) -> str:
    """``url`` without user:password@ and without credential-like query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in SECRET_PARAMS]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))
