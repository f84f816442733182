"""``python -m ccwatch``: the operator's command line (no Airflow needed).

Commands:
  summary --date YYYY-MM-DD   per-control counts of that date's control_results
  verify ARCHIVE              re-hash an evidence archive (or folder) against its manifest
  check-config [FILE]         validate a config file and exit non-zero naming the bad key
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _summary(args) -> int:
    from ccwatch.pipeline import parse_as_of, summary_table, warehouse_path
    from ccwatch.settings import ccwatch_home

    home = Path(args.home) if args.home else ccwatch_home()
    if not warehouse_path(home).is_file():
        print(f"ccwatch: no warehouse at {warehouse_path(home)} (has a run completed?)", file=sys.stderr)
        return 2
    try:
        as_of = parse_as_of(args.date)
    except ValueError:
        print(f"ccwatch: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    table = summary_table(home, as_of)
    if table.count("\n") == 0:
        print(f"ccwatch: no control_results for {as_of:%Y-%m-%d} in {warehouse_path(home)}", file=sys.stderr)
        return 1
    print(table)
    return 0


def _verify(args) -> int:
    from ccwatch.evidence import verify_archive

    path = Path(args.archive)
    if not path.exists():
        print(f"ccwatch: {path}: no such archive or folder", file=sys.stderr)
        return 2
    problems = verify_archive(path)
    for p in problems:
        print(f"{path}: {p}")
    if not problems:
        print(f"{path}: OK, every file matches manifest.json")
    return 1 if problems else 0


def _check_config(args) -> int:
    from ccwatch.settings import ConfigError, load_settings

    try:
        s = load_settings(args.file)
    except ConfigError as exc:
        print(f"ccwatch: {exc}", file=sys.stderr)
        return 2
    print(f"{s.source_path}: OK ({len(s.github.repositories)} repositories, projects {', '.join(s.jira.project_keys)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccwatch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="per-control counts of one date's results")
    p.add_argument("--date", required=True, help="as-of date, YYYY-MM-DD")
    p.add_argument("--home", help="CCWATCH_HOME (default: $CCWATCH_HOME or ./data)")
    p.set_defaults(func=_summary)
    p = sub.add_parser("verify", help="re-hash an evidence archive against its manifest")
    p.add_argument("archive", help="ccwatch-evidence-<date>.tar.gz or an evidence/<date>/ folder")
    p.set_defaults(func=_verify)
    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("file", nargs="?", help="default: $CCWATCH_CONFIG or include/config/ccwatch.yaml")
    p.set_defaults(func=_check_config)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
