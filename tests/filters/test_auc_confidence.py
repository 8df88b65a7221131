"""filters.auc_confidence: Hanley & McNeil's standard error against the spread of simulated AUCs."""

from __future__ import annotations

import numpy as np
import pytest

from filters.auc_confidence import auc_interval, auc_standard_error


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return float((pos[:, None] > neg[None, :]).mean())


@pytest.mark.parametrize(("separation", "n"), [(1.8, 50), (0.8, 25), (0.0, 40)])
def test_standard_error_is_the_spread_of_the_auc_over_samples(separation: float, n: int) -> None:
    rng = np.random.default_rng(0)
    aucs = [_auc(rng.normal(separation, 1, n), rng.normal(0, 1, n)) for _ in range(1500)]
    observed = float(np.std(aucs))
    assert auc_standard_error(float(np.mean(aucs)), n, n) == pytest.approx(observed, rel=0.12)


def test_the_interval_narrows_with_more_pages_and_stays_in_bounds() -> None:
    small, large = auc_interval(0.75, 10, 10), auc_interval(0.75, 1000, 1000)
    assert small[0] < large[0] < 0.75 < large[1] < small[1]
    assert auc_interval(0.99, 5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        auc_interval(0.5, 0, 10)
