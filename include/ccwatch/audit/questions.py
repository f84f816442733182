"""The auditor's questions about one change, each answered from the controls that decide it.

Shared by the evidence packet (``ccwatch.audit.packet``) and the self-audit (``ccwatch.audit.selfaudit``).
An answer combines the statuses of its controls: any ``fail`` -> ``no``; else any
``pending`` -> ``pending``; else any ``pass`` -> ``yes``; else (all ``not_applicable``, or
nothing recorded) -> ``not_applicable``.  Missing results never answer ``yes``.
"""

from __future__ import annotations

from dataclasses import dataclass

ANSWERS = ("yes", "no", "pending", "not_applicable")
ANSWER_WORDS = {"yes": "Yes", "no": "No", "pending": "Not decided yet (a window is still open)",
                "not_applicable": "Not applicable"}


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    controls: tuple[str, ...]


QUESTIONS: tuple[Question, ...] = (
    Question("ticket", "Was there a documented change ticket, approved before deployment "
             "(who approved it, and when)?", ("CC8.1-01", "CC8.1-02", "CC8.1-06")),
    Question("review", "Was it peer reviewed by someone other than the author, on the final head "
             "commit, before the merge?", ("CC8.1-03",)),
    Question("tests", "Were the tests run and green before the merge, and was it validated in "
             "staging before production?", ("CC8.1-05", "CC8.1-13")),
    Question("deployment", "Who deployed it to production, when, and were they authorised?", ("CC8.1-07",)),
    Question("segregation", "Was it segregated: the author neither merged, deployed nor gave the "
             "final approval?", ("CC8.1-04",)),
    Question("category", "If it was an emergency change, was the emergency procedure followed "
             "(retrospective approval, post-mortem)?", ("CC8.1-09",)),
    Question("path", "Did it reach production through a merged pull request?", ("CC8.1-10",)),
    Question("pir", "Was the ticket closed after the deployment (post-implementation review)?", ("CC8.1-08",)),
)


def combine(statuses: list[str | None]) -> str:
    """One answer from the statuses of a question's controls (None = no result recorded)."""
    if any(s == "fail" for s in statuses):
        return "no"
    if any(s == "pending" for s in statuses):
        return "pending"
    if any(s is None for s in statuses):
        return "no"  # evidence of evaluation missing: fail closed
    if any(s == "pass" for s in statuses):
        return "yes"
    return "not_applicable"


def answer(question: Question, results: dict[str, tuple[str, str]]) -> str:
    """``results``: control_id -> (status, detail) of one change."""
    return combine([(results.get(c) or (None, ""))[0] for c in question.controls])


def category_procedure(category: str | None, change_kind: str | None, windows=None) -> str:
    """The procedure that applies to the change's category, in plain words."""
    w = windows
    if change_kind == "direct_push":
        return ("Direct push: the commit reached the production branch without a pull request, "
                "outside the change procedure (CC8.1-10 fails; the per-change controls do not apply).")
    if category == "emergency":
        retro = f" within {w.emergency_retro_days} day(s) after the merge" if w else ""
        pm = f" within {w.postmortem_days} day(s) after the deployment" if w else ""
        return ("Emergency change: it may be deployed before its final approval, but it still needs peer "
                f"review and tests, a retrospective approval by an emergency approver{retro}, and a "
                f"post-mortem{pm} (CC8.1-09); CC8.1-06 does not apply.")
    if category == "standard":
        return ("Standard (pre-approved) change: no per-change final approval is required (CC8.1-06 does "
                "not apply); it is still peer reviewed, tested and deployed by an authorised deployer.")
    grace = f" (within {w.deploy_grace_hours} hours of the merge)" if w else ""
    return ("Normal change: the ticket must be approved by a change approver other than the author before "
            f"the production deployment{grace} (CC8.1-06), in addition to review, tests and a controlled "
            "deployment.")
