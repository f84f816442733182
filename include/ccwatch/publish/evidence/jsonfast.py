"""``json.dumps(obj, indent=2, ensure_ascii=False, default=str)``, byte for byte, at orjson speed.

orjson (a compliance-trestle dependency) writes the same text as the json module for str, int,
bool, None, list/tuple and str-keyed dict with ``OPT_INDENT_2``: same escapes (``\\n``, ``\\u001f``;
non-ASCII and U+2028 verbatim), same separators, ``[]``/``{}`` for empty containers.  Where the
two differ it is forced onto the json module's rendering:

- floats: orjson's shortest form differs from ``float.__repr__`` (``1e16`` vs ``1e+16``) and it
  writes NaN as ``null``.  Floats reach the writer only as :class:`JFloat` (payloads are parsed
  with :func:`loads`, facts go through :func:`wrap_floats`); orjson passes a float subclass to
  ``default``, which returns the json module's text as a raw ``orjson.Fragment``;
- datetime / date / time / dataclasses: passed through to ``default`` = ``str`` (json's default=str);
- anything orjson refuses (non-str keys, integers beyond 64 bits, lone surrogates, unknown types
  whose ``str`` fails) falls back to the json module itself.

tests/unit/publish/evidence/test_archive.py compares both on hostile values.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Any

import orjson

_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JFloat(float):
    """A float that orjson hands to ``default`` (so it is written exactly as the json module does)."""

    __slots__ = ()


def _float_text(o: float) -> str:
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == float("-inf"):
        return "-Infinity"
    return float.__repr__(o)


def _default(o: Any):
    if isinstance(o, float):
        return orjson.Fragment(_float_text(o))
    if isinstance(o, (datetime, date, time)) or not isinstance(o, (dict, list, tuple, str, int)):
        return str(o)
    raise TypeError(type(o).__name__)


def _constant(name: str) -> JFloat:
    return JFloat(float(name))


_DECODER = json.JSONDecoder(parse_float=JFloat, parse_constant=_constant)  # what json.loads builds per call


def loads(text: str | bytes) -> Any:
    """json.loads, every float a :class:`JFloat` (NaN / Infinity included).  Text goes to one shared
    decoder (json.loads makes a new JSONDecoder per call when given hooks: ~4 us of 70k records a night)."""
    if isinstance(text, str) and not text.startswith("\ufeff"):  # json.loads refuses a BOM with its own message
        return _DECODER.decode(text)
    return json.loads(text, parse_float=JFloat, parse_constant=_constant)


def wrap_floats(value: Any) -> Any:
    """``value`` with every plain float (also inside lists / dicts) as a :class:`JFloat`."""
    if type(value) is float:
        return JFloat(value)
    if isinstance(value, list):
        return [wrap_floats(v) for v in value]
    if isinstance(value, tuple):
        return tuple(wrap_floats(v) for v in value)
    if isinstance(value, dict):
        return {k: wrap_floats(v) for k, v in value.items()}
    return value


def reference_dumps(obj: Any) -> bytes:
    """The json module's rendering (the definition): indent 2, UTF-8, default=str, newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def dumps(obj: Any) -> bytes:
    """:func:`reference_dumps`, fast.  Plain floats must be :class:`JFloat` (see the module doc)."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTS) + b"\n"
    except (orjson.JSONEncodeError, TypeError):
        return reference_dumps(obj)
