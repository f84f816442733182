"""scrub(): credentials in free text (error bodies, exception messages) never reach a log or Slack."""

import base64

import pytest
from ccwatch.common.secrets import scrub

BASIC = base64.b64encode(b"ccwatch@acme.example:jira-secret-789").decode()


@pytest.mark.parametrize("text, secret", [
    (f"Authorization: Basic {BASIC}", BASIC),
    (f"authorization=Basic {BASIC}", BASIC),
    (f"AUTHORIZATION: basic {BASIC}\r\nHost: jira", BASIC),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "eyJhbGciOiJIUzI1NiJ9"),
    ("Authorization: token ghp_abcdefghijklmnop1234", "abcdefghijklmnop1234"),
    ("Authorization: Digest username=\"bot\", response=\"6629fae49393a05397450978507c4ef1\"", "6629fae4"),
    ("Proxy-Authorization: Basic " + BASIC, BASIC),
    ("Cookie: JSESSIONID=0123456789ABCDEF; atlassian.xsrf.token=BQ93-XYZ", "0123456789ABCDEF"),
    ("password=hunter2 and more", "hunter2"),
    ("https://bot:s3cr3t@jira.acme.example/rest", "s3cr3t"),
    ("token xoxb-123-456-abcdef", "xoxb-123-456-abcdef"),
])
def test_credentials_do_not_survive(text, secret):
    out = scrub(text)
    assert secret not in out
    assert "***" in out


def test_basic_scheme_word_is_kept_so_the_reader_knows_what_was_removed():
    assert scrub(f"Authorization: Basic {BASIC}") == "Authorization: Basic ***"


def test_ordinary_text_is_untouched():
    text = "Jira PAY: GET /rest/api/3/search/jql answered HTTP 403: You do not have permission (basic plan)"
    assert scrub(text) == text


def test_prose_about_tokens_stays_readable():
    text = "Jira PAY: answered HTTP 401 (the login or API token is wrong, expired or revoked)"
    assert scrub(text) == text
