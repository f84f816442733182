"""scripts/celery_stack.py for the system tests that start a real Airflow (scripts/ is no package):
the process stack, free ports, the SimpleAuthManager set-up and the api-server start."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.helpers.paths import ROOT


def stack_module() -> ModuleType:
    if "celery_stack" not in sys.modules:
        spec = importlib.util.spec_from_file_location("celery_stack", ROOT / "scripts" / "celery_stack.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["celery_stack"] = module
        spec.loader.exec_module(module)
    return sys.modules["celery_stack"]
