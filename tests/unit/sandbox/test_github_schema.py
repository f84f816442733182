"""The committed cut of GitHub's GraphQL schema (include/ccwatch/sandbox/github_schema/github.graphql)
is intact without its source: the header names the recorded package and sha256, it builds
strictly, the documents validate, and re-cutting it by the documents gives it back unchanged.
(``scripts/cut_github_schema.py SCHEMA --check`` against the npm package proves the text is
GitHub's; docs/SANDBOX.md "The schema cut" says how to run it.)"""

from __future__ import annotations

import json
import shutil

import pytest
from graphql import GraphQLSchema

from scripts import cut_github_schema as cut
from tests.helpers.github_schema import CUT_SDL, cut_schema

PACKAGE_SHA = "3c62d0526d133cee53221c89de9b455ade24db78b9e7ad56d642c4c15bce2654"


def test_the_committed_cut_verifies():
    assert cut.verify(cut.CUT, cut.DOCUMENTS, cut.README) == []
    assert cut.main(["--verify"]) == 0


def test_the_cut_names_the_recorded_source():
    text = CUT_SDL.read_text(encoding="utf-8")
    assert f"# Source: @octokit/graphql-schema 15.26.1 schema.graphql (sha256 {PACKAGE_SHA})" in text
    assert cut.recorded_source(cut.README.read_text(encoding="utf-8"))["sha"] == PACKAGE_SHA
    assert isinstance(cut_schema(), GraphQLSchema)


@pytest.fixture()
def copy(tmp_path):
    out = tmp_path / "github.graphql"
    shutil.copy(CUT_SDL, out)
    return out


def test_a_hand_added_field_is_caught(copy):
    text = copy.read_text(encoding="utf-8")
    copy.write_text(text.replace("type CheckRun implements Node {\n",
                                 "type CheckRun implements Node {\n  fullDatabaseId: BigInt\n\n", 1), encoding="utf-8")
    (problem,) = cut.verify(copy, cut.DOCUMENTS, cut.README)
    assert problem.startswith("the cut is not what the documents reach") and "-  fullDatabaseId: BigInt" in problem


def test_a_changed_type_is_caught(copy):
    text = copy.read_text(encoding="utf-8")
    assert "fullDatabaseId: BigInt" in text
    copy.write_text(text.replace("fullDatabaseId: BigInt", "fullDatabaseId: Int"), encoding="utf-8")
    assert cut.verify(copy, cut.DOCUMENTS, cut.README)


def test_another_source_is_caught(copy, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(cut.README.read_text(encoding="utf-8").replace("15.26.1", "15.27.0"), encoding="utf-8")
    (problem,) = cut.verify(copy, cut.DOCUMENTS, readme)
    assert "records @octokit/graphql-schema 15.27.0" in problem


def test_documents_the_cut_cannot_answer_are_caught(copy, tmp_path):
    doc = tmp_path / "extra.graphql"
    doc.write_text("query X { viewer { login } }\n", encoding="utf-8")
    problems = cut.verify(copy, [*cut.DOCUMENTS, str(doc)], cut.README)
    assert any("Cannot query field 'viewer' on type 'Query'" in p for p in problems)


# --- the REST description's cut (include/ccwatch/sandbox/github_schema/github_rest.json) ---------------

def test_the_rest_cut_verifies_and_holds_the_connectors_routes():
    from scripts import cut_github_openapi as rest

    assert rest.verify(rest.CUT, rest.README) == [] and rest.main(["--verify"]) == 0
    data = json.loads(rest.CUT.read_text(encoding="utf-8"))
    assert data["source"] == {"package": "@octokit/openapi", "version": "23.0.2", "file": "api.github.com.deref.json",
                              "sha256": "a631e5d9cf86ad9711e1da69015589fb270cc0f17ff33731d22b5eae845219c2",
                              "openapi": "3.0.3"}
    assert list(data["routes"]) == rest.ROUTES and rest.CUT.stat().st_size < 1_500_000


def test_the_rest_cut_catches_another_source_or_route_list(tmp_path):
    from scripts import cut_github_openapi as rest

    readme = tmp_path / "README.md"
    readme.write_text(rest.README.read_text(encoding="utf-8").replace("23.0.2", "23.1.0"), encoding="utf-8")
    assert rest.verify(rest.CUT, readme) and rest.verify(rest.CUT, rest.README, rest.ROUTES[:-1])
