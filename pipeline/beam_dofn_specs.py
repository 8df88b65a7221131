"""Beam's DoFn state/timer introspection, memoized per DoFn instance: a second of every run's start-up.

``apache_beam.transforms.userstate.get_dofn_specs`` finds a DoFn's state and timer parameters by
building an ``inspect.signature`` of every method the DoFn has, Beam's own ~30 included, and Beam
asks it again each time it translates, validates or runs a ParDo. On our default web recipe
(427 DoFn instances in the driver, most asked 12 times) that was 3,054 calls and 1.7 s of a 6 s
start-up (py-spy, Beam 2.x on this project's 2-core machine), paid again by every SDK worker,
before the first page is read: a fixed cost that short Airflow batches and each extra worker
pay in full (issue 16).

The answer depends only on the methods of the instance and their default arguments, which do not
change after the DoFn is built, so it is kept per instance (weakly: a dropped DoFn takes its entry
with it). Instances that cannot be weakly referenced are answered uncached, as before.

:func:`install` replaces the module attribute that Beam's own callers go through
(``userstate.get_dofn_specs``, which ``userstate.is_stateful_dofn`` also calls); it is idempotent
and is called when a module that builds or runs our DoFns is imported, so the SDK workers that
unpickle them get it too. ``refinery`` runs with or without it give the same pipeline.
"""

from __future__ import annotations

import weakref
from typing import Any

from apache_beam.transforms import userstate

_ORIGINAL = getattr(userstate.get_dofn_specs, "__wrapped__", userstate.get_dofn_specs)
_SPECS: weakref.WeakKeyDictionary[Any, tuple[set, set]] = weakref.WeakKeyDictionary()


def get_dofn_specs(dofn: Any) -> tuple[set, set]:
    """``userstate.get_dofn_specs``, computed once per DoFn instance (copies, so callers may mutate)."""
    try:
        cached = _SPECS.get(dofn)
    except TypeError:  # not weakly referenceable, or unhashable: ask Beam every time
        return _ORIGINAL(dofn)
    if cached is None:
        cached = _ORIGINAL(dofn)
        try:
            _SPECS[dofn] = cached
        except TypeError:
            pass
    states, timers = cached
    return set(states), set(timers)


get_dofn_specs.__wrapped__ = _ORIGINAL  # type: ignore[attr-defined]


def install() -> None:
    """Route Beam's callers through the memo (idempotent)."""
    userstate.get_dofn_specs = get_dofn_specs


install()
