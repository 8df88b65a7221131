"""The memo of Beam's DoFn introspection gives Beam's answers, once per instance, and Beam uses it."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer

import pipeline.beam_dofn_specs as memo
import pipeline.run  # noqa: F401  (what `refinery run` imports: it must install the memo)


class _Stateful(beam.DoFn):
    BAG = BagStateSpec("seen", VarIntCoder())
    TIMER = TimerSpec("flush", beam.TimeDomain.WATERMARK)

    def process(self, item, bag=beam.DoFn.StateParam(BAG), timer=beam.DoFn.TimerParam(TIMER)):
        bag.add(item[1])
        yield item[1]

    @on_timer(TIMER)
    def flush(self):
        return []


def test_the_memo_answers_as_beam_does() -> None:
    assert userstate.get_dofn_specs is memo.get_dofn_specs
    for dofn in (_Stateful(), beam.Map(len).fn, beam.DoFn()):
        assert memo.get_dofn_specs(dofn) == memo._ORIGINAL(dofn)
    states, timers = memo.get_dofn_specs(_Stateful())
    assert {s.name for s in states} == {"seen"} and len(timers) == 1
    assert userstate.is_stateful_dofn(_Stateful()) and not userstate.is_stateful_dofn(beam.Map(len).fn)


def test_each_instance_is_inspected_once(monkeypatch) -> None:
    calls = []

    def counting(dofn):
        calls.append(dofn)
        return set(), set()

    monkeypatch.setattr(memo, "_ORIGINAL", counting)
    first, second = beam.Map(str).fn, beam.Map(str).fn
    for _ in range(3):
        memo.get_dofn_specs(first)
        memo.get_dofn_specs(second)
    assert calls == [first, second]
    memo.get_dofn_specs(first)[0].add("mutated by a caller")
    assert memo.get_dofn_specs(first) == (set(), set())  # callers get copies


def test_a_stateful_pipeline_still_runs() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create([("k", 1), ("k", 2)]) | beam.ParDo(_Stateful())
        assert_that(out, equal_to([1, 2]))
