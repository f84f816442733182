"""redact_url: its fast path for plain URLs gives what urlsplit + urlunsplit give (issue #15)."""

from __future__ import annotations

import random
from urllib.parse import urlsplit, urlunsplit

import pytest
from ccwatch.common.endpoints import redact_url


def reference(url: str) -> str:
    """redact_url as it was: drop user:password@, query and fragment through urlsplit / urlunsplit."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


@pytest.mark.parametrize("url", [
    "https://api.github.com/repos/acme/r/pulls/1", "http://h", "https://h/", "https://h//x", "https://h:443/x",
    "https://u:p@h/x", "https://x-access-token:ghp_abc@api.github.com/?access_token=ghp_abc", "https://h/x?q=1",
    "https://h/x#f", "HTTPS://h/x", "https:///x", "https://[::1]/x", "https://h:/x", "https://h/\tx", " https://h/x",
    "https://h/@x", "https://h/a;b=c", "https://h/%2F", "ftp://h/x", "", "h/x", "https://hé/x", "https://h/é",
])
def test_redact_url_equals_urlsplit_on_edge_cases(url):
    assert redact_url(url) == reference(url)


def test_redact_url_equals_urlsplit_on_random_urls():
    rnd = random.Random(15)
    alphabet = "aZ09.-_~%!$&'()*+,;=:@/?#[] \t\nHTTPSsé"
    for _ in range(20000):
        url = rnd.choice(["https://", "http://", "https:/", "HTTP://", ""]) + "".join(
            rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        try:
            want = reference(url)
        except ValueError:  # urlsplit refuses it (an invalid IPv6 netloc): so does redact_url
            with pytest.raises(ValueError):
                redact_url(url)
            continue
        assert redact_url(url) == want, url
