"""A runaway call is killed at its limit and the worker carries on."""

from __future__ import annotations

import time

import pytest

from pipeline.time_limit import CallTimeout, ChildError, TimeLimitedFunction


def test_timeout_kills_and_next_call_works() -> None:
    sleeper = TimeLimitedFunction("time:sleep", timeout_seconds=1.0)
    try:
        sleeper.call(0)  # warm the child up so the timing below measures only the call
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            sleeper.call(30)
        assert time.monotonic() - started < 10
        assert sleeper.call(0) is None  # a fresh child answers
    finally:
        sleeper.close()


def test_exception_in_child_is_reported_not_raised_raw() -> None:
    sqrt = TimeLimitedFunction("math:sqrt", timeout_seconds=30)
    try:
        assert sqrt.call(16) == 4.0
        with pytest.raises(ChildError, match="ValueError"):
            sqrt.call(-1)
        assert sqrt.call(9) == 3.0
    finally:
        sqrt.close()


def test_bytes_travel_raw_and_bound_arguments_are_appended() -> None:
    import zlib

    # zlib.crc32(data, value): the page arrives as bytes, the bound starting value last.
    crc = TimeLimitedFunction("zlib:crc32", timeout_seconds=30, bound=(12345,))
    big = bytes(range(256)) * 1000  # larger than a pipe buffer
    try:
        assert crc.call(b"abc") == zlib.crc32(b"abc", 12345)
        assert crc.call(big) == zlib.crc32(big, 12345)
    finally:
        crc.close()
