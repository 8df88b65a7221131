"""How far a held-out AUC can be trusted: its 95% interval from the number of pages it was measured on.

A classifier's AUC on 20 held-out pages says little; the quality-classifier reports give it with
its interval so a small sample reads as what it is. The standard error is Hanley and McNeil's
(1982, "The meaning and use of the area under a ROC curve", Radiology 143, eq. 1-2), which needs
only the AUC and the two class sizes; the interval is the normal approximation, clipped to [0, 1].
"""

from __future__ import annotations

import math

Z_95 = 1.959964


def auc_standard_error(auc: float, n_positive: int, n_negative: int) -> float:
    """Hanley-McNeil standard error of an AUC on ``n_positive`` and ``n_negative`` pages (their eq. 2)."""
    if n_positive < 1 or n_negative < 1:
        raise ValueError("an AUC needs at least one page of each class")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc * auc)
                + (n_negative - 1) * (q2 - auc * auc)) / (n_positive * n_negative)
    return math.sqrt(max(variance, 0.0))


def auc_interval(auc: float, n_positive: int, n_negative: int) -> tuple[float, float]:
    """The 95% confidence interval of the AUC, clipped to [0, 1]."""
    half = Z_95 * auc_standard_error(auc, n_positive, n_negative)
    return max(0.0, auc - half), min(1.0, auc + half)
