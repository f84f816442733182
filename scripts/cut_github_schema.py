#!/usr/bin/env python3
"""Cut GitHub's published GraphQL schema down to what ccwatch's documents reach.

    python scripts/cut_github_schema.py SCHEMA.graphql [--check]      # regenerate (or diff) the cut
    python scripts/cut_github_schema.py --verify                       # the cut's own integrity, no source

``SCHEMA.graphql`` is the published SDL: ``schema.graphql`` of the npm package
``@octokit/graphql-schema`` (``npm pack @octokit/graphql-schema@<version>``; the version and
sha256 the committed cut was made from are in ``include/ccwatch/sandbox/github_schema/README.md``).
The documents are those of ``include/ccwatch/ingest/github/queries.py`` (``OPERATIONS``) and
``include/ccwatch/sandbox/github_schema/revision1.graphql`` (contract revision 1's, which the API
double must answer as GitHub does); ``--doc`` replaces them.  The output is
``include/ccwatch/sandbox/github_schema/github.graphql`` unless ``-o`` says otherwise.

What the cut keeps:

* every object/interface type the documents select, with only the fields they select, plus the
  fields required by the interfaces it keeps implementing (a type keeps ``implements I`` only
  when ``I`` is kept);
* for a kept interface or union, all its possible types when there are at most
  ``--max-possible-types`` (default 10: ``Actor``'s five); a larger one (``Node``, the timeline
  union) keeps only the members reached otherwise;
* every argument of a kept field; whole input objects, enums and scalars; the definitions of
  custom directives used;
* the root ``Query`` with the root fields used, implementing nothing (GitHub's ``type Query
  implements Node`` is of no use to a document).

Fields, arguments, enum values, input fields, descriptions and directives (``@deprecated``) are
copied VERBATIM from the published SDL by the source locations of their AST nodes; only a type's
header line (its filtered ``implements`` list or union members) is rebuilt.  Definitions keep the
published order, so the same inputs give the same bytes, which ``--check`` verifies (exit 1 and a
unified diff when the committed cut differs).

Checks on every run (exit 2 on failure): every document validates against the FULL schema and
against the CUT, and the cut builds with graphql-core's ``build_schema`` and passes
``assert_valid_schema`` without any ``assume_valid`` flag.

``--verify`` needs no source (the test suite runs it; the source is not committed): the cut's
header names the source recorded in the README (package, version, sha256) and the documents'
operations; the cut builds strictly; the documents validate against it; and cutting the cut
itself by the same documents gives back its body byte for byte, so it holds exactly what the
documents reach and nothing added by hand.  Only ``--check`` against the package proves the
text is GitHub's: run it after any change to the documents or a package bump (docs/SANDBOX.md).

The published SDL is not strictly valid for graphql-core (verified with 15.26.1):
``EnterpriseOwnerInfo`` defines two fields twice, and graphql-core 3.3 (graphql-js 17 rules)
rejects twelve deprecated fields that implement non-deprecated interface fields.  The FULL schema
is therefore built with ``assume_valid_sdl=True, assume_valid=True`` (GitHub's schema, used only as
the reference); the cut never needs either flag.

Standard library and graphql-core only; reads local files only.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    assert_valid_schema,
    build_ast_schema,
    build_schema,
    get_named_type,
    is_non_null_type,
    parse,
    specified_scalar_types,
    validate,
    visit,
)
from graphql.language import (
    DirectiveDefinitionNode,
    EnumTypeDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    UnionTypeDefinitionNode,
)

ROOT = Path(__file__).resolve().parent.parent
CUT_DIR = ROOT / "include" / "ccwatch" / "sandbox" / "github_schema"
CUT = CUT_DIR / "github.graphql"
README = CUT_DIR / "README.md"
DOCUMENTS = [str(ROOT / "include" / "ccwatch" / "ingest" / "github" / "queries.py"), str(CUT_DIR / "revision1.graphql")]
PACKAGE = "@octokit/graphql-schema"
BUILTIN_DIRECTIVES = {"deprecated", "include", "skip", "specifiedBy", "oneOf"}
DEFAULT_MAX_POSSIBLE_TYPES = 10


class CutError(Exception):
    """The inputs cannot give a valid cut (message says which and why)."""


# --------------------------------------------------------------------------- inputs
def load_full_schema(text: str) -> tuple[DocumentNode, GraphQLSchema]:
    """The published SDL's AST (locations kept: the cut copies source slices) and its schema."""
    ast = parse(text)
    return ast, build_ast_schema(ast, assume_valid_sdl=True, assume_valid=True)


def load_documents(specs: list[str]) -> list[tuple[str, str]]:
    """``[(label, document text)]``: a ``.py`` file defining ``OPERATIONS`` (one document per
    operation) or a GraphQL file (one document, any number of operations)."""
    docs: list[tuple[str, str]] = []
    for spec in specs:
        path = Path(spec)
        if path.suffix == ".py":
            name = "_cut_doc_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            loader = importlib.util.spec_from_file_location(name, path)
            if loader is None or loader.loader is None:
                raise CutError(f"{spec}: cannot load")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            ops = getattr(module, "OPERATIONS", None)
            if not isinstance(ops, dict) or not all(isinstance(v, str) for v in ops.values()):
                raise CutError(f"{spec}: OPERATIONS is not a dict of GraphQL documents")
            docs += [(f"{path.name}:{op}", text) for op, text in ops.items()]
        else:
            docs.append((path.name, path.read_text(encoding="utf-8")))
    return docs


def operation_names(docs: list[tuple[str, DocumentNode]]) -> list[str]:
    """``file:Name`` of every operation, in document order (the header lists them)."""
    out = []
    for label, doc in docs:
        file = label.split(":", 1)[0]
        out += [f"{file}:{d.name.value if d.name else '(anonymous)'}" for d in doc.definitions
                if d.kind == "operation_definition"]
    return out


# --------------------------------------------------------------------------- reach
@dataclass
class Reach:
    """What the documents reach: type names and, per composite type, field names (ordered)."""

    types: set[str] = field(default_factory=set)
    fields: dict[str, dict[str, None]] = field(default_factory=dict)
    roots: set[str] = field(default_factory=set)


class _Collector(Visitor):
    """Records each selected field (on its parent type), type condition and variable type."""

    def __init__(self, type_info: TypeInfo, schema: GraphQLSchema, reach: Reach):
        super().__init__()
        self.type_info, self.schema, self.reach = type_info, schema, reach

    def enter_operation_definition(self, node: Any, *_: Any) -> None:
        root = self.schema.get_root_type(node.operation)
        if root is not None:
            self.reach.roots.add(root.name)
            self.reach.types.add(root.name)

    def enter_field(self, node: Any, *_: Any) -> None:
        parent = self.type_info.get_parent_type()
        if parent is None or node.name.value.startswith("__"):  # __typename and introspection
            return
        self.reach.fields.setdefault(parent.name, {})[node.name.value] = None

    def enter_inline_fragment(self, node: Any, *_: Any) -> None:
        if node.type_condition is not None:
            self.reach.types.add(node.type_condition.name.value)

    def enter_fragment_definition(self, node: Any, *_: Any) -> None:
        self.reach.types.add(node.type_condition.name.value)

    def enter_variable_definition(self, node: Any, *_: Any) -> None:
        type_node = node.type
        while not hasattr(type_node, "name"):
            type_node = type_node.type
        self.reach.types.add(type_node.name.value)


def collect(schema: GraphQLSchema, docs: list[DocumentNode]) -> Reach:
    reach = Reach()
    for doc in docs:
        type_info = TypeInfo(schema)
        visit(doc, TypeInfoVisitor(type_info, _Collector(type_info, schema, reach)))
    return reach


def close(schema: GraphQLSchema, reach: Reach, max_possible: int) -> Reach:
    """The closure of what the documents select (rules in the module docstring)."""
    types: set[str] = set()
    fields: dict[str, dict[str, None]] = {}
    queue: list[str] = []

    def keep_type(name: str) -> None:
        if name not in types:
            types.add(name)
            queue.append(name)

    def keep_field(type_name: str, field_name: str) -> bool:
        kept = fields.setdefault(type_name, {})
        if field_name in kept:
            return False
        kept[field_name] = None
        keep_type(type_name)
        fdef = schema.type_map[type_name].fields[field_name]  # type: ignore[union-attr]
        keep_type(get_named_type(fdef.type).name)
        for arg in fdef.args.values():
            keep_type(get_named_type(arg.type).name)
        return True

    def keep_some_field(name: str) -> bool:
        """A composite type reached only as an abstract position or a type condition (``Node`` in
        ``nodes(ids:) { ... on Deployment }``) must still have a field: its first argument-free
        leaf, ``id`` first."""
        t = schema.type_map[name]
        for field_name, fdef in sorted(t.fields.items(), key=lambda kv: kv[0] != "id"):  # type: ignore[union-attr]
            leaf = isinstance(get_named_type(fdef.type), (GraphQLScalarType, GraphQLEnumType))
            if leaf and not any(is_non_null_type(a.type) for a in fdef.args.values()):
                return keep_field(name, field_name)
        raise CutError(f"{name} has no argument-free leaf field to keep")

    for name in reach.types:
        keep_type(name)
    for type_name, names in reach.fields.items():
        for field_name in names:
            keep_field(type_name, field_name)
    changed = True
    while changed:
        changed = False
        while queue:  # the types a kept type needs by itself
            t = schema.type_map[queue.pop()]
            if isinstance(t, GraphQLInputObjectType):
                for f in t.fields.values():
                    keep_type(get_named_type(f.type).name)
            elif isinstance(t, (GraphQLInterfaceType, GraphQLUnionType)):
                impl = None if isinstance(t, GraphQLUnionType) else schema.get_implementations(t)
                members = t.types if impl is None else [*impl.objects, *impl.interfaces]  # type: ignore[union-attr]
                if len(members) <= max_possible:
                    for m in members:
                        keep_type(m.name)
        for name in sorted(types):
            t = schema.type_map[name]
            if not isinstance(t, (GraphQLObjectType, GraphQLInterfaceType)):
                continue
            if not fields.get(name):
                changed |= keep_some_field(name)
            if name in reach.roots:  # a root type implements nothing in the cut
                continue
            for iface in t.interfaces:  # fields an implementation must carry (may reach new types)
                if iface.name in types:
                    for field_name in list(fields.get(iface.name, {})):
                        changed |= keep_field(name, field_name)
        changed |= bool(queue)
    return Reach(types=types, fields=fields, roots=set(reach.roots))


# --------------------------------------------------------------------------- printing
def _slice(text: str, node: Any) -> str:
    return text[node.loc.start:node.loc.end]


def _description(text: str, node: Any) -> str:
    return _slice(text, node.description) + "\n" if node.description else ""


def _directives(text: str, node: Any) -> str:
    return "".join(" " + _slice(text, d) for d in node.directives or ())


def _directive_names(node: Any) -> set[str]:
    """Names of the directives used on a definition and on its fields, arguments and values."""
    names = {d.name.value for d in getattr(node, "directives", None) or ()}
    for attr in ("fields", "arguments", "values"):
        for child in getattr(node, attr, None) or ():
            names |= _directive_names(child)
    return names


def print_body(text: str, ast: DocumentNode, cut: Reach) -> str:
    """The cut's definitions: kept definitions in published order, their kept members verbatim."""
    blocks: list[str] = []
    used: set[str] = set()
    directive_defs: dict[str, DirectiveDefinitionNode] = {}
    seen: set[str] = set()
    for node in ast.definitions:
        if isinstance(node, DirectiveDefinitionNode):
            directive_defs[node.name.value] = node
            continue
        name = getattr(getattr(node, "name", None), "value", None)
        if name not in cut.types or name in specified_scalar_types or name in seen:
            continue
        seen.add(name)
        if isinstance(node, (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)):
            keep = cut.fields.get(name, {})
            members, names = [], set()
            for f in node.fields or ():  # the first of a duplicated field (EnterpriseOwnerInfo has two)
                if f.name.value in keep and f.name.value not in names:
                    members.append(f)
                    names.add(f.name.value)
            ifaces = [] if name in cut.roots else [i.name.value for i in node.interfaces or ()
                                                   if i.name.value in cut.types]
            kind = "type" if isinstance(node, ObjectTypeDefinitionNode) else "interface"
            head = f"{kind} {name}" + (" implements " + " & ".join(ifaces) if ifaces else "")
            body = "\n\n".join("  " + _slice(text, f) for f in members)
            blocks.append(f"{_description(text, node)}{head}{_directives(text, node)} {{\n{body}\n}}")
            used |= {d.name.value for d in node.directives or ()}
            for f in members:
                used |= _directive_names(f)
        elif isinstance(node, UnionTypeDefinitionNode):
            kept = [t.name.value for t in node.types or () if t.name.value in cut.types]
            blocks.append(f"{_description(text, node)}union {name}{_directives(text, node)} = " + " | ".join(kept))
            used |= {d.name.value for d in node.directives or ()}
        elif isinstance(node, (EnumTypeDefinitionNode, InputObjectTypeDefinitionNode, ScalarTypeDefinitionNode)):
            blocks.append(_slice(text, node))  # whole, verbatim (description included)
            used |= _directive_names(node)
        else:  # extensions or anything unforeseen: never silently dropped
            raise CutError(f"unsupported definition {node.kind} for {name}")
    missing = cut.types - seen - set(specified_scalar_types)
    if missing:
        raise CutError(f"kept types with no definition in the SDL: {sorted(missing)}")
    custom = sorted(n for n in used - BUILTIN_DIRECTIVES if n in directive_defs)
    return "\n\n".join([_slice(text, directive_defs[n]) for n in custom] + blocks) + "\n"


# --------------------------------------------------------------------------- checks
def _invalid(schema: GraphQLSchema, docs: list[tuple[str, DocumentNode]], which: str) -> list[str]:
    return [f"{label} against the {which} schema: {err.message}" for label, doc in docs for err in validate(schema, doc)]


def strict_schema(sdl: str) -> GraphQLSchema:
    """The cut as graphql-core builds it with no ``assume_valid`` flag (CutError when invalid)."""
    try:
        schema = build_schema(sdl)
        assert_valid_schema(schema)
    except (TypeError, GraphQLError) as exc:
        raise CutError(f"the cut schema does not build: {exc}") from None
    return schema


def header(source: str, sha: str, ops: list[str], max_possible: int) -> str:
    lines = ["GitHub GraphQL schema, cut to what ccwatch's documents reach (scripts/cut_github_schema.py).",
             "Do not edit: regenerate. `--check` against the package proves it is the script's output.",
             f"Source: {source} (sha256 {sha})",
             "Documents: " + ", ".join(ops),
             f"Possible types of an interface/union kept up to {max_possible} members."]
    return "".join(f"# {line}\n" for line in lines) + "\n"


def cut_sdl(text: str, specs: list[str], max_possible: int) -> tuple[str, list[tuple[str, DocumentNode]]]:
    """The cut's body from the published SDL text, and the parsed documents."""
    ast, full = load_full_schema(text)
    docs = [(label, parse(src)) for label, src in load_documents(specs)]
    problems = _invalid(full, docs, "published")
    if problems:
        raise CutError("documents do not validate:\n  " + "\n  ".join(problems))
    return print_body(text, ast, close(full, collect(full, [d for _, d in docs]), max_possible)), docs


def generate(schema_text: str, source: str, specs: list[str], max_possible: int) -> str:
    body, docs = cut_sdl(schema_text, specs, max_possible)
    sha = hashlib.sha256(schema_text.encode("utf-8")).hexdigest()
    out = header(source, sha, operation_names(docs), max_possible) + body
    problems = _invalid(strict_schema(out), docs, "cut")
    if problems:
        raise CutError("documents do not validate against the cut:\n  " + "\n  ".join(problems))
    return out


_SOURCE = re.compile(r"^# Source: (?P<package>\S+) (?P<version>\S+) (?P<file>\S+) \(sha256 (?P<sha>[0-9a-f]{64})\)$",
                     re.M)
_MAX = re.compile(r"^# Possible types of an interface/union kept up to (?P<n>\d+) members\.$", re.M)


def recorded_source(readme: str) -> dict[str, str]:
    """The README's record of the source: ``| package | version | file | sha256 |`` row of the SDL."""
    for line in readme.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == PACKAGE and cells[2] == "schema.graphql":
            return {"package": cells[0], "version": cells[1], "file": cells[2], "sha": cells[3]}
    raise CutError(f"{README.name} records no {PACKAGE} schema.graphql row")


def verify(cut_path: Path, specs: list[str], readme_path: Path) -> list[str]:
    """Problems with a committed cut, checked without its source (see the module docstring)."""
    text = cut_path.read_text(encoding="utf-8")
    problems = []
    m, mx = _SOURCE.search(text), _MAX.search(text)
    if not m or not mx:
        return [f"{cut_path.name}: no 'Source:' / 'Possible types' header line"]
    rec = recorded_source(readme_path.read_text(encoding="utf-8"))
    if (m["package"], m["version"], m["file"], m["sha"]) != (rec["package"], rec["version"], rec["file"], rec["sha"]):
        problems.append(f"{cut_path.name} names {m['package']} {m['version']} {m['file']} {m['sha']}, "
                        f"{readme_path.name} records {rec['package']} {rec['version']} {rec['file']} {rec['sha']}")
    try:
        schema = strict_schema(text)
        body, docs = cut_sdl(text, specs, int(mx["n"]))
    except CutError as exc:
        return [*problems, str(exc)]
    problems += _invalid(schema, docs, "cut")
    ops = operation_names(docs)
    if f"# Documents: {', '.join(ops)}\n" not in text:
        problems.append(f"{cut_path.name}: its 'Documents:' header is not {', '.join(ops)}")
    own_body = text.split("\n\n", 1)[1] if text.startswith("#") else text
    if body != own_body:
        diff = difflib.unified_diff(own_body.splitlines(True), body.splitlines(True), cut_path.name, "re-cut")
        problems.append("the cut is not what the documents reach (hand-edited, or the documents changed: "
                        "regenerate from the package):\n" + "".join(list(diff)[:60]))
    return problems


# --------------------------------------------------------------------------- main
def _source_label(schema_path: Path) -> str:
    """'@octokit/graphql-schema 15.26.1 schema.graphql' from the package.json beside the SDL."""
    import json

    pkg = schema_path.resolve().parent / "package.json"
    if not pkg.is_file():
        raise CutError(f"no package.json next to {schema_path}: pass --source-label '<package> <version> <file>'")
    meta = json.loads(pkg.read_text(encoding="utf-8"))
    return f"{meta.get('name')} {meta.get('version')} {schema_path.name}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("schema", nargs="?", help="schema.graphql of the @octokit/graphql-schema package")
    p.add_argument("-o", "--output", type=Path, default=CUT, help="the cut to write, check or verify")
    p.add_argument("--doc", action="append", help="a .py with OPERATIONS or a GraphQL file (default: ccwatch's)")
    p.add_argument("--check", action="store_true", help="regenerate and diff against --output; exit 1 if it differs")
    p.add_argument("--verify", action="store_true", help="check the committed cut without its source")
    p.add_argument("--max-possible-types", type=int, default=DEFAULT_MAX_POSSIBLE_TYPES)
    p.add_argument("--source-label", help="'<package> <version> <file>' (default: from package.json)")
    args = p.parse_args(argv)
    specs = args.doc or DOCUMENTS
    try:
        if args.verify:
            problems = verify(args.output, specs, README)
            for problem in problems:
                print(problem, file=sys.stderr)
            print(f"{args.output}: {'INVALID' if problems else 'verified'}", file=sys.stderr)
            return 1 if problems else 0
        if not args.schema:
            p.error("SCHEMA.graphql is required unless --verify")
        path = Path(args.schema)
        out = generate(path.read_text(encoding="utf-8"), args.source_label or _source_label(path), specs,
                       args.max_possible_types)
    except CutError as exc:
        print(f"cut_github_schema: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != out:
            sys.stderr.writelines(difflib.unified_diff(current.splitlines(True), out.splitlines(True),
                                                       str(args.output), "regenerated"))
            print(f"{args.output} is not the output of cut_github_schema.py for these inputs", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date", file=sys.stderr)
        return 0
    args.output.write_text(out, encoding="utf-8", newline="\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
