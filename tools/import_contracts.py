"""ccwatch's own import-linter contract type (registered in pyproject.toml, ``[tool.importlinter]``).

``private_names``: no module imports another module's private name (``from ccwatch.x import _y``),
and no module binds an imported name under a private alias (``from ccwatch.x import y as _y``):
a name that starts with an underscore belongs to the module that defines it.  import-linter's
built-in contracts check modules, not names, so this one reads each module's source with ``ast``.
"""

from __future__ import annotations

import ast
import importlib.util

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class PrivateNamesContract(Contract):
    type_name = "private_names"

    source_packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots = [str(p) for p in self.source_packages]  # type: ignore[attr-defined]
        violations: list[str] = []
        for module in sorted(graph.modules):
            if not any(module == r or module.startswith(r + ".") for r in roots):
                continue
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            with open(spec.origin, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), spec.origin)
            is_package = spec.origin.endswith("__init__.py")
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                    continue
                source = _absolute(module, is_package, node)
                for alias in node.names:
                    if _private(alias.name):
                        violations.append(f"{module}:{node.lineno} imports the private name {alias.name} "
                                          f"of {source}")
                    elif alias.asname and _private(alias.asname):
                        violations.append(f"{module}:{node.lineno} binds {source}.{alias.name} under the "
                                          f"private alias {alias.asname}")
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["violations"]:
            output.print_error(line)
            output.new_line()
