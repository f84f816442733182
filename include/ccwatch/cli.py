"""``python -m ccwatch``: the operator's command line (no Airflow needed).

Commands:
  summary --date YYYY-MM-DD   per-control counts of that date's control_results
  verify ARCHIVE_OR_FOLDER [--public-key F] [--tsa-ca F]   re-hash an evidence archive, folder or sample
                              packet against its manifest; check its signature and time-stamp
  verify --chain EVIDENCE_DIR [--public-key F]   every archive and each link of the hash chain
  check-config [FILE]         validate a config file and exit non-zero naming the bad key
  sample --from D --to D --size N --seed S    the auditor's reproducible sample and its evidence packet
  self-audit --quarter 2026Q4 [--size N] [--seed S]   the quarterly self-audit report
  suites [--out DIR]          the controls' Great Expectations suites as JSON, for review

Exit status: 0 ok, 1 the check found problems, 2 the command could not run (bad input).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _summary(args) -> int:
    from ccwatch.common.paths import warehouse_path
    from ccwatch.common.times import parse_as_of
    from ccwatch.publish.results import summary_table
    from ccwatch.settings import ccwatch_home
    from ccwatch.warehouse import connection

    home = Path(args.home) if args.home else ccwatch_home()
    if not warehouse_path(home).is_file():
        print(f"ccwatch: no warehouse at {warehouse_path(home)} (has a run completed?)", file=sys.stderr)
        return 2
    try:
        as_of = parse_as_of(args.date)
    except ValueError:
        print(f"ccwatch: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    con = connection.connect(warehouse_path(home), read_only=True)
    try:
        table = summary_table(con, as_of)
    finally:
        con.close()
    if table.count("\n") == 0:
        print(f"ccwatch: no control_results for {as_of:%Y-%m-%d} in {warehouse_path(home)}", file=sys.stderr)
        return 1
    print(table)
    return 0


def _verify(args) -> int:
    from ccwatch.publish.evidence import signing, timestamp
    from ccwatch.publish.evidence.chain import verify_chain
    from ccwatch.publish.evidence.verify import verify

    key = anchors = None
    try:
        if args.public_key:
            key = signing.load_ed25519_public_key(args.public_key)
        if args.tsa_ca:
            anchors = timestamp.load_trust_anchors(args.tsa_ca)
            if not anchors:
                raise timestamp.TimestampMalformed(f"{args.tsa_ca}: no certificate in it")
    except (OSError, signing.SigningKeyError, timestamp.TimestampMalformed) as exc:
        what = getattr(exc, "strerror", None) or exc
        print(f"ccwatch: {what}" + (f": {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""),
              file=sys.stderr)
        return 2
    path = Path(args.archive)
    if not path.exists() and not path.is_symlink():
        print(f"ccwatch: {path}: no such archive or folder", file=sys.stderr)
        return 2
    if args.chain:
        reports, chain = verify_chain(path, key, anchors)
        worst = max([r.exit_code for r in reports] + [chain.exit_code])
        for r in reports:
            _print_report(Path(r.target), r, quiet_ok=True)
        for line in chain.lines():
            print(f"{path}: chain: {line}")
        for line in chain.notes:
            print(f"{path}: chain: {line}")
        if chain.errors:
            print(f"ccwatch: {path}: {chain.errors[0]}", file=sys.stderr)
        elif worst == 0:
            print(f"{path}: OK, {len(reports)} archive(s) verify and every link of the hash chain holds")
        return worst
    report = verify(path, key, anchors)
    return _print_report(path, report)


def _print_report(path: Path, report, quiet_ok: bool = False) -> int:
    if report.errors:
        first = "it has no manifest.json" if report.errors[0] == "missing: manifest.json" else report.errors[0]
        print(f"ccwatch: {path}: not a readable ccwatch evidence archive, folder or sample packet ({first})",
              file=sys.stderr)
        for e in report.errors[1:]:
            print(f"ccwatch: {path}: {e}", file=sys.stderr)
    for line in report.problems + ([f"... and {report.more} more problems"] if report.more else []):
        print(f"{path}: {line}")
    for note in report.notes:
        print(f"{path}: {note}")
    if report.exit_code == 0:
        sha = f" (manifest.json sha256 {report.manifest_sha256})" if report.manifest_sha256 else ""
        print(f"{path}: OK, every file matches manifest.json{sha}")
    return report.exit_code


def _check_config(args) -> int:
    from ccwatch.settings import ConfigError, load_settings

    try:
        s = load_settings(args.file)
    except ConfigError as exc:
        print(f"ccwatch: {exc}", file=sys.stderr)
        return 2
    print(f"{s.source_path}: OK ({len(s.github.repositories)} repositories, projects {', '.join(s.jira.project_keys)})")
    return 0


def _home(args) -> Path:
    from ccwatch.settings import ccwatch_home

    return Path(args.home) if args.home else ccwatch_home()


def _progress(message: str) -> None:
    print(f"ccwatch: {message}", file=sys.stderr, flush=True)


def _sample(args) -> int:
    from ccwatch.audit.packet import sample_packet
    from ccwatch.audit.sampling import SamplingError
    from ccwatch.settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
        res = sample_packet(_home(args), settings, args.date_from, args.date_to, args.size, args.seed,
                            through=args.through, progress=_progress)
    except (SamplingError, ConfigError) as exc:
        print(f"ccwatch: {exc}", file=sys.stderr)
        return 2
    s = res.sample
    if res.numbered:
        _progress("a packet of this draw already existed: wrote a new, numbered one (none is overwritten)")
    print(f"sample:     {s.drawn}")
    if s.period.warning:
        print(f"warning:    {s.period.warning}")
    print(f"population: {s.population_size} changes, sha256 {s.period.population_hash}")
    print(f"packet:     {res.directory}  ({res.files} files)")
    print(f"index:      {res.directory / 'index.html'}")
    print(f"verify:     python -m ccwatch verify {res.directory}")
    return 0


def _self_audit(args) -> int:
    from ccwatch.audit.packet import open_warehouse
    from ccwatch.audit.sampling import SamplingError
    from ccwatch.audit.selfaudit import self_audit

    try:
        con = open_warehouse(_home(args))
        try:
            _progress(f"drawing the {args.quarter} sample and counting the quarter's results")
            folder = self_audit(con, args.quarter, args.size, args.seed, home=_home(args))
        finally:
            con.close()
    except SamplingError as exc:
        print(f"ccwatch: {exc}", file=sys.stderr)
        return 2
    print(f"self-audit: {folder / 'self-audit.html'}")
    print(f"csv:        {folder / 'self-audit.csv'}")
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is less than 1")
    return n


_HOME_HELP = "CCWATCH_HOME (default: $CCWATCH_HOME or ./data)"
_FMT = argparse.RawDescriptionHelpFormatter


def _suites(args) -> int:
    from ccwatch.controls.suite_json import write_suites
    from ccwatch.settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"ccwatch: {exc}", file=sys.stderr)
        return 2
    for path in write_suites(settings, Path(args.out)):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccwatch", description=__doc__, formatter_class=_FMT)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="per-control counts of one date's results", formatter_class=_FMT,
                       description="Print the per-control counts of one run date's control_results.",
                       epilog="example:\n  python -m ccwatch summary --date 2026-11-25")
    p.add_argument("--date", required=True, help="as-of date, YYYY-MM-DD")
    p.add_argument("--home", help=_HOME_HELP)
    p.set_defaults(func=_summary)
    p = sub.add_parser("verify", help="check an evidence archive, folder, sample packet or chain of dates",
                       formatter_class=_FMT,
                       description="Re-hash every file against manifest.json (regular files only: links, devices and "
                                   "paths leaving the folder are failures), check the manifest's Ed25519 signature "
                                   "(with --public-key) and RFC 3161 time-stamp (its chain with --tsa-ca), or with "
                                   "--chain every archive of an evidence folder and each day's link to the previous "
                                   "day's manifest. Exit 0 when all holds, 1 on a mismatch, 2 when the input is "
                                   "unreadable or malformed. See docs/AUDITOR.md.",
                       epilog="examples:\n  python -m ccwatch verify data/evidence/ccwatch-evidence-2026-11-25.tar.gz"
                              " --public-key ccwatch-signing.pub.pem --tsa-ca tsa-ca.pem"
                              "\n  python -m ccwatch verify --chain data/evidence --public-key ccwatch-signing.pub.pem"
                              "\n  python -m ccwatch verify data/samples/2026-10-01_2026-11-25_seed7_n25")
    p.add_argument("archive", metavar="ARCHIVE_OR_FOLDER",
                   help="ccwatch-evidence-<date>.tar.gz, an evidence/<date>/ folder or a samples/ packet; with "
                        "--chain the evidence folder holding the archives")
    p.add_argument("--chain", action="store_true", help="verify every archive of the folder and the hash chain")
    p.add_argument("--public-key", metavar="FILE",
                   help="the Ed25519 public key (PEM) the company gave you: the signature must verify with it")
    p.add_argument("--tsa-ca", metavar="FILE",
                   help="the time-stamping authority's root certificate(s) (PEM), obtained from the TSA: a CA "
                        "taken from the archive proves nothing, a forger would replace it too")
    p.set_defaults(func=_verify)
    p = sub.add_parser("check-config", help="validate a configuration file", formatter_class=_FMT,
                       description="Validate a config file; exit 2 naming the file and the bad key.",
                       epilog="example:\n  python -m ccwatch check-config include/config/ccwatch.yaml")
    p.add_argument("file", nargs="?", help="default: $CCWATCH_CONFIG or include/config/ccwatch.yaml")
    p.set_defaults(func=_check_config)
    p = sub.add_parser(
        "sample", help="draw the auditor's reproducible sample of a period and write its evidence packet",
        formatter_class=_FMT,
        description="Draw a reproducible random sample of the changes merged in a period (UTC days, both "
                    "inclusive) from the stored population, each with the results of the latest run that "
                    "evaluated it, and write the evidence packet to CCWATCH_HOME/samples/<from>_<to>_seed<S>_n<N>/ "
                    "(index.csv, index.html, sample.json, one page and the raw evidence per change, "
                    "manifest.json). An existing packet is never overwritten. See docs/AUDITOR.md.",
        epilog="examples:\n  python -m ccwatch sample --from 2026-10-01 --to 2026-11-25 --size 25 --seed 7\n"
               "  python -m ccwatch verify data/samples/2026-10-01_2026-11-25_seed7_n25")
    p.add_argument("--from", dest="date_from", required=True, metavar="DATE", help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument("--size", type=_positive, required=True, metavar="N", help="number of changes to draw")
    p.add_argument("--seed", type=int, required=True, metavar="S", help="random seed (any whole number)")
    p.add_argument("--through", metavar="DATE",
                   help="consider only runs up to this as-of date (default: every run; sample.json "
                        "records the date to pass here to reproduce a draw exactly)")
    p.add_argument("--config", help="config file (default: $CCWATCH_CONFIG or include/config/ccwatch.yaml)")
    p.add_argument("--home", help=_HOME_HELP)
    p.set_defaults(func=_sample)
    p = sub.add_parser(
        "self-audit", help="the quarterly self-audit report over a sample of the quarter", formatter_class=_FMT,
        description="Draw a sample of the quarter's changes and write CCWATCH_HOME/self-audits/<quarter>_seed<S>"
                    "_n<N>/self-audit.html and .csv: the auditor's questions answered over the sample, the "
                    "exceptions, every control's pass rate over the whole quarter and a conclusion per control.",
        epilog="examples:\n  python -m ccwatch self-audit --quarter 2026Q4\n"
               "  python -m ccwatch self-audit --quarter 2026Q4 --size 40 --seed 11")
    p.add_argument("--quarter", required=True, help="e.g. 2026Q4")
    p.add_argument("--size", type=_positive, default=25, metavar="N", help="sample size (default 25)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed (default: the quarter's number, 20264)")
    p.add_argument("--home", help=_HOME_HELP)
    p.set_defaults(func=_self_audit)
    p = sub.add_parser(
        "suites", help="write the controls' Great Expectations suites as JSON", formatter_class=_FMT,
        description="Write one <control id>.json per control: the GX expectation suite built from the config "
                    "in force (the rule over named facts, applied to rows whose scope is 'due').",
        epilog="example:\n  python -m ccwatch suites --out include/ccwatch/controls/suites")
    p.add_argument("--out", default="include/ccwatch/controls/suites", help="output folder")
    p.add_argument("--config", help="config file (default: $CCWATCH_CONFIG or include/config/ccwatch.yaml)")
    p.set_defaults(func=_suites)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
