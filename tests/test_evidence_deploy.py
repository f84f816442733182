"""EnvDeployments answers exactly what the per-change scan over every deployment answered."""

import random

import pytest
from ccwatch.publish.evidence.deployments import EnvDeployments


def scan(items, pos, sha, keep):
    """The previous implementation: every deployment, creation order, containment test."""
    out = []
    for d in sorted(items, key=lambda d: (str(d.get("created_at")), d.get("id") or 0)):
        if not keep(d):
            continue
        dsha = d.get("sha")
        if dsha == sha or (sha in pos and dsha in pos and pos[dsha] >= pos[sha]):
            out.append(d)
    return out


@pytest.mark.parametrize("seed", range(25))
def test_same_deployments_in_the_same_order_as_the_scan(seed):
    rng = random.Random(seed)
    shas = [f"{i:040x}" for i in range(rng.randint(1, 60))]
    pos = {s: i for i, s in enumerate(shas) if rng.random() < 0.9}  # some shas off the first-parent line
    items = [{"id": i, "sha": rng.choice(shas + [None, "feedface" * 5]),
              "created_at": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"}
             for i in range(rng.randint(0, 80))]
    keep = (lambda d: d["created_at"] < "2026-11-20") if seed % 2 else (lambda d: True)
    env = EnvDeployments(items, pos, keep)
    for sha in shas + [None, "feedface" * 5, "0" * 40 + "x"]:
        assert list(env.containing(sha)) == scan(items, pos, sha, keep), sha


def test_empty_environment():
    assert list(EnvDeployments([], {"a": 0}, lambda d: True).containing("a")) == []
