"""A stand-in for PyGithub's client as ccwatch's GraphQL code uses it (``client.requester``):
one canned answer per POST, in order, and every document sent kept in ``sent``."""

from __future__ import annotations

import json


class CannedRequester:
    graphql_url = "https://api.github.com/graphql"

    def __init__(self, answers):
        self.answers, self.sent = list(answers), []

    def requestJson(self, verb, url, input=None, **_):  # noqa: N802 (PyGithub's name)
        self.sent.append(input)
        return 200, {}, json.dumps(self.answers.pop(0))


class CannedClient:
    def __init__(self, answers):
        self.requester = CannedRequester(answers)
