"""Each invariant reads only the record fields it declares in ``needs``.

``needs`` decides applicability: an adapter that does not supply a field gets "not
applicable" for every invariant needing it, and placeholders elsewhere. So a check that
reads an undeclared field would check a placeholder (a false failure, or worse a false
pass). Here every undeclared field is replaced by a value that refuses any use, and the
header says only the declared fields are supplied, on healthy records and on records
broken on purpose: each check must give the same verdict and message as on the real values
under the same header, without touching it. (A check may read an undeclared field when the
header says it is supplied: messages name the executed action when there is one.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import CATALOG, Context
from tradeguard.trace import StepRecord, Trace

ALWAYS_SUPPLIED = frozenset({"t", "predicted", "legs"})
"""What every adapter fills (``GymAdapter`` included): messages may name them. ``legs`` is
structural rather than supplied: ``None`` (the placeholder) means one instrument, in the
scalar fields, and every check reads it to know which."""

SHAPE = frozenset({"legs"})
"""Not a value but the record's shape: ``None`` says the instrument is in the scalar fields
(``StepRecord.instrument_legs``), which every check reads to know where to look. These traces
are single-instrument; the multi-instrument path is tests/test_float_ledgers.py's."""


class Unsupplied:
    """A field the adapter did not supply: comparing, computing with or printing it fails."""

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise AssertionError("an invariant read a record field it does not declare in needs")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __neg__ = __abs__ = _refuse
    __bool__ = __index__ = __int__ = __float__ = __hash__ = __len__ = __iter__ = _refuse  # type: ignore[assignment]
    __getitem__ = __contains__ = __format__ = __str__ = __repr__ = _refuse  # type: ignore[assignment]


UNSUPPLIED = Unsupplied()


def _poison(r: StepRecord, keep: frozenset[str]) -> StepRecord:
    return r._replace(**{f: UNSUPPLIED for f in StepRecord._fields if f not in keep | SHAPE})


def _trace(seed: int, scenario: str) -> Trace:
    env = TradingEnv(config=EnvConfig(episode_length=12), scenario=scenario)
    env.reset(seed=seed)
    for a in np.random.default_rng(seed).integers(0, 7, size=12):
        env.step(int(a))
    return env.trace


def _broken(r: StepRecord, field: str, delta: int) -> StepRecord:
    value = getattr(r, field)
    if field == "rejected":
        return r._replace(rejected=not value)
    if field == "components":
        return r._replace(components=tuple(c + delta * 0.5 if i == 4 else c for i, c in enumerate(value)))
    if field == "mask":
        return r._replace(mask=tuple(not m if i == r.predicted else m for i, m in enumerate(value)))
    if field == "executed":
        return r._replace(executed=(value + delta) % 7)
    if isinstance(value, float):
        return r._replace(**{field: value + delta * 0.25})
    return r._replace(**{field: value + delta})


def _supplying(trace: Trace, keep: frozenset[str]) -> Context:
    """The context of an adapter that supplies only ``keep``."""
    return Context.of(dataclasses.replace(trace.meta, supplies=trace.meta.supplies & keep))


BREAKABLE = [f for f in StepRecord._fields if f not in ("t", "reason", "reported_equity", *SHAPE)]
"""Fields a record can be broken in (``reported_equity`` is ``None`` on TradingEnv's traces)."""


def _verdict(check: Any, *args: Any) -> tuple[str, object]:
    try:
        return "ok", check(*args)
    except AssertionError as e:
        if "does not declare in needs" in str(e):
            raise
        return "raised", type(e).__name__
    except Exception as e:  # the clean record may make a check raise; it must raise alike
        return "raised", type(e).__name__


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 40),
    scenario=st.sampled_from(["default", "v9", "v10", "v10.1"]),
    index=st.integers(0, 11),
    field=st.sampled_from([None, *BREAKABLE]),
    delta=st.sampled_from([-1, 1, 3]),
)
# Found by this test's search: allowed-actions-execute's message named the mask, which it does not need.
@example(seed=1, scenario="default", index=2, field="position_after", delta=-1)
def test_step_checks_read_only_what_they_declare(seed: int, scenario: str, index: int, field: str | None, delta: int) -> None:
    trace = _trace(seed, scenario)
    records = list(trace.records)
    if field is not None:
        records[index] = _broken(records[index], field, delta)
    prev, r = (records[index - 1] if index else None), records[index]
    for inv in CATALOG:
        if inv.step_check is None:
            continue
        keep = inv.needs | ALWAYS_SUPPLIED
        narrow = _supplying(trace, keep)
        clean = _verdict(inv.step_check, prev, r, narrow)
        poisoned = _verdict(inv.step_check, None if prev is None else _poison(prev, keep), _poison(r, keep), narrow)
        assert poisoned == clean, inv.id


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 40),
    scenario=st.sampled_from(["default", "v10", "v10.1"]),
    index=st.integers(0, 11),
    field=st.sampled_from([None, "executed", "predicted", "rejected", "components"]),
    delta=st.sampled_from([-1, 1]),
)
def test_episode_checks_read_only_what_they_declare(seed: int, scenario: str, index: int, field: str | None, delta: int) -> None:
    trace = _trace(seed, scenario)
    ctx = Context.of(trace.meta)
    records = list(trace.records)
    if field is not None:
        records[index] = _broken(records[index], field, delta)
    for inv in CATALOG:
        if inv.episode_check is None or "reported_metrics" in inv.needs:
            continue
        keep = inv.needs | ALWAYS_SUPPLIED
        clean = list(inv.episode_check(Trace(tuple(records), trace.meta), ctx))
        narrow = _supplying(trace, keep)
        poisoned = list(inv.episode_check(Trace(tuple(_poison(r, keep) for r in records), narrow.meta), narrow))
        assert poisoned == clean, inv.id


def test_the_poison_is_noticed() -> None:
    # The check above is only as good as the poison: reading an undeclared field must fail.
    trace = _trace(0, "default")
    inv = next(i for i in CATALOG if i.id == "equity-identity")
    narrowed = dataclasses.replace(inv, needs=inv.needs - {"cash_before"})
    r = _poison(trace.records[3], narrowed.needs | ALWAYS_SUPPLIED)
    try:
        narrowed.step_check(trace.records[2], r, _supplying(trace, narrowed.needs | ALWAYS_SUPPLIED))  # type: ignore[misc]
    except AssertionError as e:
        assert "does not declare in needs" in str(e)
    else:
        raise AssertionError("equity-identity read cash_before without the poison noticing")


def test_the_adapter_guide_lists_what_each_field_is_read_by() -> None:
    # docs/adapters.md's field table is how adapter authors learn what to supply: keep it true.
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "adapters.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].strip("`") in StepRecord._fields:
            rows[cells[0].strip("`")] = {x.strip() for x in cells[2].split(",")} - {"(messages)"}
    assert set(rows) == set(StepRecord._fields)
    for field, readers in rows.items():
        assert readers == {i.id for i in CATALOG if field in i.needs}, field
