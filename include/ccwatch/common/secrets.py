"""Credentials out of free text: error bodies and exception messages pass through ``scrub``
before they reach a log line, an exception message or a Slack alert.

An HTTP error page may echo the request's headers (a proxy's 403 page, a Jira Server error
page): ``Authorization: Basic <base64 of login:token>`` must lose the credential, not only the
word after the colon. The authentication scheme word is kept (``Authorization: Basic ***``) so
the reader still knows what kind of credential was there.
"""

from __future__ import annotations

import re

_SCHEMES = r"(?:basic|bearer|token|digest|negotiate|ntlm|hoba|mutual|aws4-hmac-sha256|sso-key)"

_SECRETS = [
    # an Authorization header (or proxy's): keep the scheme word, drop everything after it on the line
    (re.compile(rf"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)(?:({_SCHEMES})\s+)?[^\r\n]+"),
     lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}***"),
    # cookies carry session ids: drop the values, keep nothing of the header line
    (re.compile(r"(?i)\b((?:set-)?cookie\s*:\s*)[^\r\n]+"), r"\1***"),
    (re.compile(r"xox[abposre]-[A-Za-z0-9-]+"), "xox?-***"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{10,})"), "gh*_***"),
    (re.compile(r"(?i)\b(bearer|token|password|passwd|secret|api[_-]?key)(\s*[:=]\s*)[^\s,;'\"]+"), r"\1\2***"),
    # 'Bearer <x>' / 'token <x>' without a colon: only when <x> looks like a credential, so prose
    # such as "the API token is wrong" stays readable
    (re.compile(r"(?i)\b(bearer|token)(\s+)[A-Za-z0-9._~+/=-]{12,}"), r"\1\2***"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "://***@"),
]


def scrub(text: str) -> str:
    """Remove credential-looking parts (authorization headers, cookies, tokens, basic-auth URLs,
    'password=...') from free text."""
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text
