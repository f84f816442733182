"""GX expectations and their findings in words (configurations as GX 1.24 serialises them, taken
from a demo run's gx_validation.json)."""

from __future__ import annotations

from ccwatch.publish.report.gx_words import (
    condition_words,
    expectation_sentence,
    rule_words,
    unexpected_by_change,
    value_words,
)

SCOPE_01 = {"column": {"name": "cc01_scope"}, "operator": "==", "parameter": "due", "type": "comparison"}


def cfg(kind, **kwargs):
    return {"type": kind, "kwargs": {"batch_id": "ccwatch-change_facts CC8.1-01", **kwargs}}


def test_each_rule_type_in_words():
    assert rule_words(cfg("expect_column_values_to_not_be_null", column="ticket_key")) == "ticket key is filled in"
    assert rule_words(cfg("expect_column_values_to_be_null", column="x")) == "x is empty"
    assert rule_words(cfg("expect_column_values_to_be_in_set", column="ticket_exists", value_set=[True])) == \
        "ticket exists: yes"
    assert rule_words(cfg("expect_column_values_to_be_in_set", column="status", value_set=["pass", "n/a"])) == \
        "status is one of: pass, n/a"
    assert rule_words(cfg("expect_column_values_to_not_be_in_set", column="s", value_set=["a", "b"])) == \
        "s is none of: a, b"
    assert rule_words(cfg("expect_column_values_to_be_between", column="independent_approvals", min_value=1.0)) == \
        "independent approvals is at least 1"
    assert rule_words(cfg("expect_column_values_to_be_between", column="checks_not_green", max_value=0.0)) == \
        "checks not green is at most 0"
    assert rule_words(cfg("expect_column_values_to_be_between", column="n", min_value=1, max_value=3)) == \
        "n is between 1 and 3"
    assert rule_words(cfg("expect_column_values_to_be_between", column="n", min_value=0, max_value=0)) == "n is 0"
    assert rule_words(cfg("expect_column_values_to_be_between", column="n", min_value=0, strict_min=True)) == \
        "n is above 0"
    assert rule_words(cfg("expect_column_pair_values_a_to_be_greater_than_b", column_A="pir_deadline",
                          column_B="pir_done_at", or_equal=True, ignore_row_if="either_value_is_missing")) == \
        "pir deadline is on or after pir done at (either of the two empty: not judged by this rule)"
    assert rule_words(cfg("expect_column_pair_values_a_to_be_greater_than_b", column_A="deployed_at",
                          column_B="approved_at")) == "deployed at is after approved at"
    assert rule_words(cfg("expect_column_values_to_be_unique", column="change_id")) == "change id is unique"
    assert rule_words(cfg("expect_table_row_count_to_equal", value=3)) == "table row count to equal"


def test_conditions_in_words():
    assert condition_words(SCOPE_01) == "the changes CC8.1-01 is due for"
    assert condition_words({**SCOPE_01, "column": {"name": "cc12_scope"}}, "repo") == \
        "the repositories CC8.1-12 is due for"
    assert condition_words({"type": "comparison", "column": {"name": "change_kind"}, "operator": "!=",
                            "parameter": "direct_push"}) == "the changes whose change kind is not direct_push"
    assert condition_words({"type": "comparison", "column": {"name": "category"}, "operator": "IN",
                            "parameter": ["emergency", "standard"]}) == \
        "the changes whose category is one of emergency, standard"
    assert condition_words({"type": "nullity", "column": {"name": "deployed_at"}, "is_null": False}) == \
        "the changes whose deployed at is filled in"
    assert condition_words({"type": "and", "conditions": [SCOPE_01, {"type": "nullity", "column": {"name": "x"},
                                                                     "is_null": True}]}) == \
        "the changes CC8.1-01 is due for and the changes whose x is empty"
    assert condition_words('cc01_scope == "due"') == 'the changes matching cc01_scope == "due"'
    assert condition_words(None) == "every change" and condition_words(None, "repo") == "every repository"


def test_a_whole_sentence_has_no_json():
    sentence = expectation_sentence(cfg("expect_column_values_to_not_be_null", column="ticket_key",
                                        row_condition=SCOPE_01))
    assert sentence == "For the changes CC8.1-01 is due for: ticket key is filled in."
    assert "{" not in sentence and "row_condition" not in sentence


def test_values_in_words():
    assert [value_words(v) for v in (None, True, False, 1.0, 1.5, [None, "a"], [], "2026-11-10T13:06:00.000000")] == \
        ["(empty)", "yes", "no", "1", "1.5", "(empty), a", "(none)", "2026-11-10T13:06:00"]


def test_unexpected_values_are_paired_with_their_change():
    res = {"result": {"unexpected_count": 2, "partial_unexpected_list": [None, None],
                      "partial_unexpected_index_list": [{"change_id": "acme/payments-api#122", "ticket_key": None},
                                                        {"change_id": "acme/web-frontend#335", "ticket_key": None}],
                      "unexpected_index_column_names": ["change_id"]}}
    assert unexpected_by_change(res, cfg("expect_column_values_to_not_be_null", column="ticket_key")) == [
        ("acme/payments-api#122", "ticket key: (empty)"), ("acme/web-frontend#335", "ticket key: (empty)")]
    pair = {"result": {"partial_unexpected_index_list": [
        {"approved_at": "2026-11-11T09:00:00", "change_id": "acme/payments-api#144", "deployed_at": "2026-11-10T13:06:00"}],
        "unexpected_index_column_names": ["change_id"]}}
    assert unexpected_by_change(pair, cfg("expect_column_pair_values_a_to_be_greater_than_b", column_A="deployed_at",
                                          column_B="approved_at")) == [
        ("acme/payments-api#144", "deployed at: 2026-11-10T13:06:00; approved at: 2026-11-11T09:00:00")]


def test_without_ids_the_values_come_with_their_counts():
    res = {"result": {"partial_unexpected_list": ["fail"], "partial_unexpected_counts": [{"value": "fail", "count": 3}]}}
    assert unexpected_by_change(res, cfg("expect_column_values_to_be_in_set", column="status")) == [
        (None, "status: fail (3 row(s))")]
    assert unexpected_by_change({"result": {"partial_unexpected_list": [None]}},
                                cfg("expect_column_values_to_not_be_null", column="x")) == [(None, "x: (empty)")]
    rows = {"result": {"details": {"unexpected_rows": [{"change_id": "o/r#1", "n": 0}, "odd"]}}}
    assert unexpected_by_change(rows, {"type": "unexpected_rows_expectation", "kwargs": {}}) == [
        ("o/r#1", "n: 0"), (None, "odd")]
    assert unexpected_by_change({"result": {}}, cfg("expect_x", column="x")) == []
