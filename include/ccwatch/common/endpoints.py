"""Where a source lives and how to authenticate, resolved from an Airflow connection by the glue.

The token is kept out of ``repr`` and ``str`` so it can never reach a log line by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# a URL that urlsplit + urlunsplit give back unchanged and that has no credentials, query or fragment:
# lowercase http(s), a plain host[:port], a path of unreserved / sub-delim characters (no ?, #, blanks)
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?\Z")


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    login: str | None = None
    token: str | None = field(default=None, repr=False)
    verify_tls: bool = True

    def __str__(self) -> str:
        return redact_url(self.base_url)


def redact_url(url: str) -> str:
    """Drop any user:password@ part and query string from a URL before it is logged or stored."""
    if isinstance(url, str) and _PLAIN_URL.match(url):  # nothing to drop (most stored URLs; the evidence step redacts one per record)
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
