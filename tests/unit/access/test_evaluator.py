"""The access evaluator (DESIGN "Access"; STYLE rule 8): table tests for patterns, statements and
``allows``, then properties that must hold for every list of statements (deny by default,
monotonic, order independent, audience isolated)."""

import fnmatch
import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_provider.access.evaluator import SLICE, Decision, Statement, StatementError, allows, matches

GRAFANA = "https://grafana.example.com"
WIKI = "https://wiki.example.com"
EVERYTHING = Statement(GRAFANA, ("*",), ("*",))
READ_TEAM = Statement(GRAFANA, ("dashboards:read",), ("team:*",))


def statement(**members) -> dict:
    """A statement as JSON carries it, with valid defaults for the members not given."""
    return {"audience": GRAFANA, "actions": ["*"], "resources": ["*"], **members}


# -- matches -----------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, value, expected", [
    ("dashboards:read", "dashboards:read", True),
    ("dashboards:read", "dashboards:write", False),
    ("dashboards:read", "dashboards:read:all", False),   # a literal is not a prefix
    ("dashboards:read", "dashboards", False),
    ("*", "dashboards:read", True),
    ("*", "*", True),
    ("priority:*", "priority:high", True),
    ("priority:*", "priority:", True),                   # the prefix itself, with nothing after
    ("priority:*", "priority", False),
    ("priority:*", "prio", False),
    ("priority:*", "xpriority:high", False),             # a prefix, not a substring
    ("dashboards:read", "Dashboards:Read", False),       # case-sensitive
    ("priority:*", "PRIORITY:high", False),
    ("team:*", "team:*", True),                          # a value may contain '*'; it is just a character
    ("team:a", "team:*", False),
], ids=lambda v: repr(v) if isinstance(v, str) else None)
def test_matches_literal_star_and_trailing_prefix(pattern, value, expected):
    assert matches(pattern, value) is expected


# -- allows: tables ----------------------------------------------------------------------------

@pytest.mark.parametrize("statements, action, resource, expected", [
    pytest.param([EVERYTHING], "anything", "at:all", True, id="star-star-allows-all"),
    pytest.param([READ_TEAM], "dashboards:read", "team:ops", True, id="literal-action-prefix-resource"),
    pytest.param([READ_TEAM], "dashboards:read", "team:", True, id="prefix-matches-itself"),
    pytest.param([READ_TEAM], "dashboards:write", "team:ops", False, id="other-action"),
    pytest.param([READ_TEAM], "dashboards:read", "org:ops", False, id="other-resource"),
    pytest.param([READ_TEAM], "Dashboards:read", "team:ops", False, id="case-sensitive-action"),
    pytest.param([READ_TEAM], "dashboards:read", "Team:ops", False, id="case-sensitive-resource"),
    pytest.param([Statement(GRAFANA, ("dashboards:read",), ("team:ops",))], "dashboards:read", "team:opsx", False,
                 id="literal-resource-is-exact"),
    pytest.param([Statement(GRAFANA, ("a", "b"), ("x", "y"))], "b", "x", True, id="any-action-with-any-resource"),
    pytest.param([Statement(GRAFANA, ("a",), ("x",)), Statement(GRAFANA, ("b",), ("y",))], "a", "y", False,
                 id="no-mixing-across-statements"),
    pytest.param([statement(actions=["issues:*"], resources=["priority:*"])], "issues:close", "priority:high", True,
                 id="plain-dict-statement"),
    pytest.param([], "a", "r", False, id="empty-list-denies"),
    pytest.param(None, "a", "r", False, id="no-statements-denies"),
])
def test_allows_table(statements, action, resource, expected):
    assert allows(statements, action, resource).allowed is expected


@pytest.mark.parametrize("action, resource", [
    ("", "r"), ("a", ""), (None, "r"), ("a", None), (5, "r"), (b"a", "r"), (["a"], "r"), ("a", {"r": 1}),
], ids=repr)
def test_non_string_or_empty_action_or_resource_is_denied(action, resource):
    decision = allows([EVERYTHING, statement()], action, resource)
    assert decision.allowed is False
    assert decision.reason == "the action and the resource must be non-empty strings"
    assert decision.statement is None


@pytest.mark.parametrize("bad", [
    pytest.param("*", id="a-string"),
    pytest.param(None, id="none"),
    pytest.param(5, id="a-number"),
    pytest.param(["*", "*"], id="a-list"),
    pytest.param({"actions": ["*"]}, id="no-resources"),
    pytest.param({"resources": ["*"]}, id="no-actions"),
    pytest.param(statement(actions="*"), id="actions-a-bare-string"),
    pytest.param(statement(actions=[]), id="actions-empty"),
    pytest.param(statement(actions=[5]), id="action-not-a-string"),
    pytest.param(statement(actions=["a*b"]), id="inner-wildcard"),
    pytest.param(statement(resources=["*team"]), id="leading-wildcard"),
    pytest.param(statement(resources=["team ops"]), id="space-in-pattern"),
    pytest.param(statement(audience="*"), id="wildcard-audience"),
    pytest.param(statement(audience=""), id="empty-audience"),
    pytest.param(statement(audience=0), id="falsy-non-string-audience"),
    pytest.param(statement(effect="allow"), id="unknown-member"),
    pytest.param(statement(actions=["*"] * 51), id="too-many-actions"),
])
def test_malformed_statement_allows_nothing_and_is_skipped(bad):
    denied = allows([bad], "dashboards:read", "team:ops")
    assert denied.allowed is False and denied.statement is None
    # Skipped, not fatal: a good statement after it still counts.
    allowed = allows([bad, READ_TEAM], "dashboards:read", "team:ops")
    assert allowed.allowed is True and allowed.statement == READ_TEAM


def test_a_statement_object_for_another_audience_is_ignored_when_an_audience_is_asked():
    wiki = Statement(WIKI, ("*",), ("*",))
    assert allows([wiki], "a", "r", audience=GRAFANA).allowed is False
    assert allows([wiki], "a", "r", audience=WIKI).allowed is True
    assert allows([wiki], "a", "r").allowed is True  # no audience asked: every statement counts


def test_a_dict_statement_naming_another_audience_is_ignored_when_an_audience_is_asked():
    assert allows([statement(audience=WIKI)], "a", "r", audience=GRAFANA).allowed is False
    decision = allows([statement(audience=WIKI)], "a", "r", audience=WIKI)
    assert decision.allowed is True and decision.statement.audience == WIKI


def test_a_slice_statement_without_audience_belongs_to_the_audience_asked():
    # resource_access[aud].statements leaves the audience out: the slice is already that audience's.
    sliced = {"actions": ["dashboards:read"], "resources": ["team:*"]}
    decision = allows([sliced], "dashboards:read", "team:ops", audience=GRAFANA)
    assert decision.allowed is True
    assert decision.statement == Statement(GRAFANA, ("dashboards:read",), ("team:*",))
    assert allows([sliced], "dashboards:read", "team:ops").statement.audience == SLICE


def test_decision_is_truthy_exactly_when_allowed_and_names_the_statement_that_allowed():
    first = Statement(GRAFANA, ("dashboards:*",), ("team:*",))
    decision = allows([Statement(GRAFANA, ("x",), ("y",)), first, EVERYTHING], "dashboards:read", "team:ops")
    assert decision and decision.allowed is True
    assert decision.statement == first  # the first statement that allows, not a later one
    assert decision.reason == "allowed by a statement"


def test_denial_is_falsy_and_its_reason_names_the_action_and_resource():
    decision = allows([READ_TEAM], "dashboards:write", "team:ops")
    assert not decision and isinstance(decision, Decision)
    assert decision.reason == "no statement allows 'dashboards:write' on 'team:ops'"
    assert decision.statement is None


# -- Statement validation ----------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    pytest.param(statement(actions=["a*b"]), "actions: 'a*b' may have a trailing '*' only", id="inner-wildcard"),
    pytest.param(statement(resources=["*a"]), "resources: '*a' may have a trailing '*' only", id="leading-wildcard"),
    pytest.param(statement(resources=["a**"]), "may have a trailing '*' only", id="double-wildcard"),
    pytest.param(statement(audience="https://*.example.com"), "audience: 'https://*.example.com' may have no '*'",
                 id="wildcard-in-audience"),
    pytest.param(statement(audience="*"), "may have no '*'", id="audience-star"),
    pytest.param(statement(actions=[]), "actions must be a non-empty list", id="empty-actions"),
    pytest.param(statement(resources=[]), "resources must be a non-empty list", id="empty-resources"),
    pytest.param(statement(actions="dashboards:read"), "actions must be a non-empty list", id="bare-string-actions"),
    pytest.param(statement(resources={"team:*": True}), "resources must be a non-empty list", id="object-resources"),
    pytest.param(statement(actions=[f"a{i}" for i in range(51)]), "at most 50", id="51-actions"),
    pytest.param(statement(resources=["r"] * 51), "at most 50", id="51-resources"),
    pytest.param(statement(actions=["a" * 201]), "1-200 characters", id="201-chars"),
    pytest.param(statement(audience="a" * 201), "1-200 characters", id="201-char-audience"),
    pytest.param(statement(actions=[""]), "1-200 characters", id="empty-pattern"),
    pytest.param(statement(actions=[None]), "1-200 characters", id="null-pattern"),
    pytest.param(statement(audience=None), "audience: each value must be a string", id="null-audience"),
    pytest.param({"actions": ["*"], "resources": ["*"]}, "audience: each value must be a string",
                 id="no-audience-and-none-given"),
    pytest.param(statement(actions=["a b"]), "must not contain spaces", id="space"),
    pytest.param(statement(actions=["a\tb"]), "must not contain spaces", id="tab"),
    pytest.param(statement(resources=["a\n"]), "must not contain spaces", id="newline"),
    pytest.param(statement(resources=["a\x00"]), "control characters", id="nul"),
    pytest.param(statement(resources=["a\x1b[0m"]), "control characters", id="escape"),
    pytest.param(statement(resources=["a\u00a0b"]), "must not contain spaces", id="no-break-space"),
    pytest.param(statement(resources=["a\u200bb"]), "control characters", id="zero-width-space"),
    pytest.param(statement(audience="https://grafana example"), "must not contain spaces", id="space-in-audience"),
    pytest.param(statement(effect="deny"), "unknown member(s) effect", id="unknown-member"),
    pytest.param(statement(Effect="x", conditions={}), "unknown member(s) Effect, conditions", id="unknown-members"),
    pytest.param(["*"], "must be an object", id="not-an-object"),
])
def test_malformed_statements_are_refused_with_a_reason(data, message):
    with pytest.raises(StatementError, match=re.escape(message)):
        Statement.from_dict(data)


@pytest.mark.parametrize("data", [
    pytest.param(statement(actions=["a" * 200]), id="200-chars"),
    pytest.param(statement(actions=[f"a{i}" for i in range(50)]), id="50-actions"),
    pytest.param(statement(actions=["*"], resources=["team:*"]), id="star-and-prefix"),
    pytest.param(statement(actions=["dashboards:read"], resources=["team:ops/ünïcode"]), id="unicode"),
])
def test_well_formed_statements_at_the_limits_are_accepted(data):
    assert Statement.from_dict(data).to_dict() == data


def test_the_constructor_validates_like_from_dict_and_stores_tuples():
    with pytest.raises(StatementError, match="actions must be a non-empty list"):
        Statement(GRAFANA, "dashboards:read", ("*",))
    with pytest.raises(StatementError, match=re.escape("trailing '*' only")):
        Statement(GRAFANA, ("*",), ("a*b",))
    from_lists = Statement(GRAFANA, ["a"], ["b"])
    assert from_lists == Statement(GRAFANA, ("a",), ("b",)) and from_lists.actions == ("a",)
    assert hash(from_lists) == hash(Statement(GRAFANA, ("a",), ("b",)))  # frozen values can key a set


def test_from_dict_fills_in_a_missing_audience_but_keeps_a_present_one():
    sliced = {"actions": ["a"], "resources": ["r"]}
    assert Statement.from_dict(sliced, audience=GRAFANA).audience == GRAFANA
    assert Statement.from_dict(statement(audience=WIKI), audience=GRAFANA).audience == WIKI


@pytest.mark.parametrize("value", [EVERYTHING, READ_TEAM, Statement(WIKI, ("pages:*", "x"), ("space:a", "*"))],
                         ids=["everything", "read-team", "two-each"])
def test_to_dict_round_trips_through_json(value):
    assert Statement.from_dict(json.loads(json.dumps(value.to_dict()))) == value
    assert Statement.from_dict(value.to_dict(with_audience=False), audience=value.audience) == value
    assert "audience" not in value.to_dict(with_audience=False)


# -- properties --------------------------------------------------------------------------------
# A tiny universe so that generated patterns and values collide often (a prefix that matches, a
# literal equal to a value). Drawing from fixed lists is also much cheaper than st.text, which
# keeps the file fast.

PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True, database=None)
AUDIENCES = (GRAFANA, WIKI)
WORDS = ["".join(letters) for n in (1, 2, 3) for letters in itertools.product("a:", repeat=n)]  # a, :, aa, a:...
PREFIX_PATTERNS = ["*", "a*", ":*", "aa*", "a:*", ":a*", "::*"]

values = st.sampled_from(WORDS)
# One third each: "*", a prefix pattern, a literal (a literal is then a one-in-fourteen value).
patterns = st.one_of(st.just("*"), st.sampled_from(PREFIX_PATTERNS[1:]), values)
# One or two patterns; tuples draw faster than st.lists, and longer lists find nothing new.
pattern_lists = st.one_of(patterns.map(lambda p: (p,)), st.tuples(patterns, patterns))
statements = st.tuples(st.sampled_from(AUDIENCES), pattern_lists, pattern_lists).map(lambda t: Statement(*t))
# Junk a list may hold. The "deny" ones would take allows away if anyone taught the evaluator
# deny statements, which the order, removal and union properties would then catch.
malformed = st.sampled_from([
    None, 5, "*", ["*", "*"], {"resources": ["*"]}, {"actions": "*", "resources": "*"},
    statement(actions=["a*a"]), statement(audience="*"), statement(actions=[]),
    *(statement(audience=audience, effect="deny") for audience in (GRAFANA, WIKI)),
    {"actions": ["a*"], "resources": ["*"], "effect": "deny"},
])
# What a token or a database hands the evaluator: statements, their JSON form, and junk.
items = st.one_of(statements, statements.map(Statement.to_dict), malformed)
item_lists = st.lists(items, max_size=4)
asked_audiences = st.one_of(st.none(), st.sampled_from(AUDIENCES))


def ask(data, items) -> tuple[str, str]:
    """An action and a resource to ask ``items`` about. Half the time each is a value that a
    pattern in ``items`` names (a literal, or a prefix pattern's prefix): with values drawn
    uniformly, most questions are denied and a property about allows mostly checks denials."""
    def named(member):
        found = _named(items, member)
        return st.one_of(st.sampled_from(found), values) if found else values
    return data.draw(named("actions"), label="action"), data.draw(named("resources"), label="resource")


@PROPERTIES
@given(pattern=patterns, value=values)
def test_matches_agrees_with_shell_glob_for_a_trailing_star(pattern, value):
    # fnmatch is an independent oracle here: the words have no '?', '[' or ']'.
    assert matches(pattern, value) is fnmatch.fnmatchcase(value, pattern)


@PROPERTIES
@given(action=st.text(max_size=5), resource=st.text(max_size=5), audience=asked_audiences)
def test_deny_by_default(action, resource, audience):
    assert not allows([], action, resource, audience=audience)


@PROPERTIES
@given(items=item_lists, data=st.data(), audience=asked_audiences)
def test_malformed_items_never_raise_and_allow_nothing(items, data, audience):
    action, resource = ask(data, items)
    well_formed = [i for i in items if isinstance(i, Statement) or (isinstance(i, dict) and _well_formed(i))]
    assert (allows(items, action, resource, audience=audience).allowed
            is allows(well_formed, action, resource, audience=audience).allowed)


@PROPERTIES
@given(items=st.lists(items, min_size=1, max_size=4), data=st.data(), audience=asked_audiences)
def test_removing_a_statement_never_allows_more(items, data, audience):
    # Equivalently: adding a statement never takes an allow away. There are no deny statements.
    removed = data.draw(st.integers(0, len(items) - 1), label="removed")
    fewer = items[:removed] + items[removed + 1:]
    # Every question the items name, rather than one drawn question: a violation needs a question
    # that the fewer statements allow *and* that the removed one matches, which one draw rarely is.
    questions = list(itertools.product(_named(items, "actions"), _named(items, "resources")))
    allowed_by_fewer = {q for q in questions if allows(fewer, *q, audience=audience)}
    assert allowed_by_fewer <= {q for q in questions if allows(items, *q, audience=audience)}


@PROPERTIES
@given(items=item_lists, data=st.data(), audience=asked_audiences)
def test_order_of_statements_does_not_change_the_answer(items, data, audience):
    shuffled = data.draw(st.permutations(items), label="shuffled")
    action, resource = ask(data, items)
    assert (allows(shuffled, action, resource, audience=audience).allowed
            is allows(items, action, resource, audience=audience).allowed)


@PROPERTIES
@given(first=item_lists, second=item_lists, data=st.data(), audience=asked_audiences)
def test_allows_a_union_exactly_when_either_part_allows(first, second, data, audience):
    action, resource = ask(data, first + second)
    either = (allows(first, action, resource, audience=audience).allowed
              or allows(second, action, resource, audience=audience).allowed)
    assert allows(first + second, action, resource, audience=audience).allowed is either


@PROPERTIES
@given(items=item_lists, action=st.text(min_size=1, max_size=5), resource=st.text(min_size=1, max_size=5))
def test_star_on_star_allows_every_action_on_every_resource(items, action, resource):
    decision = allows([*items, EVERYTHING], action, resource)
    assert decision and decision.statement is not None


@PROPERTIES
@given(audience=st.sampled_from(AUDIENCES), action=values, resource=values)
def test_a_literal_statement_allows_exactly_its_own_pair(audience, action, resource):
    only = [Statement(audience, (action,), (resource,))]
    allowed = {(a, r) for a in WORDS for r in WORDS if allows(only, a, r)}
    assert allowed == {(action, resource)}


@PROPERTIES
@given(value=statements, data=st.data(), audience=asked_audiences)
def test_dict_form_and_statement_form_agree(value, data, audience):
    action, resource = ask(data, [value])
    visible = audience in (None, value.audience)
    expected = allows([value], action, resource, audience=audience).allowed
    assert expected is (visible and value.allows(action, resource))
    assert allows([value.to_dict()], action, resource, audience=audience).allowed is expected
    # The slice form (no audience member) read for its own audience says the same.
    sliced = allows([value.to_dict(with_audience=False)], action, resource, audience=value.audience)
    assert sliced.allowed is value.allows(action, resource)


@PROPERTIES
@given(value=statements)
def test_statement_round_trips_through_its_dict_form(value):
    assert Statement.from_dict(value.to_dict()) == value
    assert Statement.from_dict(value.to_dict(with_audience=False), audience=value.audience) == value


@PROPERTIES
@given(items=st.lists(st.one_of(statements, statements.map(Statement.to_dict)), max_size=4),
       audience=st.sampled_from(AUDIENCES), data=st.data())
def test_statements_for_one_audience_never_allow_at_another(items, audience, data):
    other = data.draw(st.sampled_from([a for a in AUDIENCES if a != audience] + [audience + "/other"]))
    for_audience = [*(_with_audience(item, audience) for item in items), _with_audience(EVERYTHING, audience)]
    action, resource = ask(data, for_audience)
    assert allows(for_audience, action, resource, audience=audience)  # they do allow at their own
    assert not allows(for_audience, action, resource, audience=other)


def _named(items, member: str) -> list[str]:
    """The values the patterns of ``items`` name: each literal, and each prefix pattern's prefix."""
    return sorted({p.rstrip("*") for item in items for p in _patterns(item, member)} - {""})


def _patterns(item, member: str) -> list:
    patterns = getattr(item, member) if isinstance(item, Statement) else (
        item.get(member) if isinstance(item, dict) else None)
    return [p for p in patterns if isinstance(p, str)] if isinstance(patterns, list | tuple) else []


def _with_audience(item, audience):
    if isinstance(item, Statement):
        return Statement(audience, item.actions, item.resources)
    return {**item, "audience": audience}


def _well_formed(data) -> bool:
    try:
        Statement.from_dict(data, audience=SLICE)
    except StatementError:
        return False
    return True
