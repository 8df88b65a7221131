"""Reliability and safety cases: each test here reproduces a way the tools could be misused or
could lose data, and checks that it is refused, counted or kept apart instead."""
