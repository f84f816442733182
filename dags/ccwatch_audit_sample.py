"""
### ccwatch_audit_sample — the auditor's reproducible sample of a period (SOC 2 Type 2)

Triggered by hand (no schedule): **Trigger DAG** with these parameters:

| param | meaning |
|---|---|
| `date_from` | first day of the period, `YYYY-MM-DD` (UTC) |
| `date_to` | last day of the period, `YYYY-MM-DD` (UTC, inclusive) |
| `size` | number of changes to draw (default 25) |
| `seed` | random seed: the same seed over the same population draws the same changes |

The single task **write_sample_packet** reads the stored population of the period from
`CCWATCH_HOME/warehouse.duckdb` (every change merged in the period, each with the results of
the latest nightly run that evaluated it), draws the sample and writes the evidence packet to
`CCWATCH_HOME/samples/<from>_<to>_seed<S>_n<N>/` (an existing packet is never overwritten).
It is the same as `python -m ccwatch sample --from … --to … --size … --seed …`; see
`docs/AUDITOR.md`. An empty period or bad dates fail the task at once, without retries; a
warehouse busy with the nightly load is retried.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

DEFAULT_ARGS = {
    "owner": "compliance-platform",
    "retries": max(2, int(os.environ.get("CCWATCH_RETRIES", "2"))),
    "retry_delay": timedelta(seconds=int(os.environ.get("CCWATCH_RETRY_DELAY_SECONDS", "300"))),
}


@dag(
    dag_id="ccwatch_audit_sample",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ccwatch", "compliance", "soc2", "audit"],
    doc_md=__doc__,
    params={
        "date_from": Param(type="string", format="date", title="From (first day)",
                           description="First day of the period, YYYY-MM-DD (UTC)."),
        "date_to": Param(type="string", format="date", title="To (last day, inclusive)",
                         description="Last day of the period, YYYY-MM-DD (UTC, inclusive)."),
        "size": Param(25, type="integer", minimum=1, title="Sample size",
                      description="Number of changes to draw; all of them when the population is smaller."),
        "seed": Param(type="integer", title="Seed",
                      description="Random seed; record it: the same seed draws the same sample."),
    },
)
def ccwatch_audit_sample():
    @task
    def write_sample_packet(params: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException
        from ccwatch.audit.packet import sample_packet
        from ccwatch.audit.sampling import SamplingError
        from ccwatch.settings import ccwatch_home, load_settings

        p = params or {}
        try:
            res = sample_packet(ccwatch_home(), load_settings(), p["date_from"], p["date_to"],
                                int(p["size"]), int(p["seed"]), progress=print)
        except SamplingError as exc:  # a wrong request: retrying cannot help
            raise AirflowFailException(str(exc)) from exc
        s = res.sample
        return {"packet": str(res.directory), "files": res.files, "numbered": res.numbered,
                "population": s.population_size, "population_sha256": s.period.population_hash,
                "sampled": len(s.changes), "complete": s.period.complete}

    write_sample_packet()


ccwatch_audit_sample()
