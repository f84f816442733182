"""GitHub's published schemas as the tests use them: the committed GraphQL cut, contract revision
1's documents, and which selected fields are 32-bit ``Int`` ids (include/ccwatch/sandbox/github_schema)."""

from __future__ import annotations

import re
from functools import cache

from graphql import (
    DocumentNode,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    get_named_type,
    parse,
    visit,
)

from tests.helpers.paths import ROOT

SCHEMA_DIR = ROOT / "include" / "ccwatch" / "sandbox" / "github_schema"
CUT_SDL = SCHEMA_DIR / "github.graphql"
CUT_REST = SCHEMA_DIR / "github_rest.json"
REVISION1 = SCHEMA_DIR / "revision1.graphql"
# A field holds an id when named id/databaseId or ending in Id/DatabaseId (fullDatabaseId is a BigInt)
ID_NAME = re.compile(r"^(id|databaseId)$|(Id|DatabaseId)$")
# the one Int id kept on purpose: the App id protection's app_id / rulesets' integration_id name;
# the schema has no 64-bit alternative and App ids are small (GitHub Actions: 15368)
ALLOWED_INT_IDS = {"App.databaseId"}


@cache
def cut_schema() -> GraphQLSchema:
    """The committed cut, built strictly (no assume_valid flag)."""
    return build_schema(CUT_SDL.read_text(encoding="utf-8"))


def revision1() -> str:
    """Contract revision 1's three documents (one GraphQL document, three named operations)."""
    return REVISION1.read_text(encoding="utf-8")


class _IntFields(Visitor):
    def __init__(self, type_info: TypeInfo):
        super().__init__()
        self.type_info, self.found = type_info, []

    def enter_field(self, node, *_):
        fdef, parent = self.type_info.get_field_def(), self.type_info.get_parent_type()
        if fdef is not None and get_named_type(fdef.type).name == "Int":
            self.found.append(f"{parent.name}.{node.name.value}")


def int_fields(schema: GraphQLSchema, doc: str | DocumentNode) -> list[str]:
    """``Type.field`` of every selected field whose type is ``Int`` (32-bit signed), in document order."""
    type_info = TypeInfo(schema)
    v = _IntFields(type_info)
    visit(parse(doc) if isinstance(doc, str) else doc, TypeInfoVisitor(type_info, v))
    return v.found


def int_ids(schema: GraphQLSchema, doc: str | DocumentNode) -> list[str]:
    """The ``Int`` fields of a document that hold ids (a REST id past 2**31 cannot be served there)."""
    return [f for f in int_fields(schema, doc) if ID_NAME.search(f.split(".", 1)[1])]
