"""How likely a text is offensive: the classifier `alt-profanity-check` ships in its package (a
TF-IDF vectoriser and five sigmoid-calibrated linear SVMs trained on labelled comments).

A pure function of the text. The model is read from the package once, on first use (or when the
service starts, through `load`). The library's `predict_prob` goes through scikit-learn's
`CalibratedClassifierCV.predict_proba`, whose per-call checks cost about 5 ms per comment; the
same numbers come from the five linear models and their sigmoids as one small matrix product
(a test holds the two equal), so a comment costs about the vectoriser's 0.5 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class _Model:
    vectorizer: Any
    weights: npt.NDArray[np.float64]  # features x calibrated models
    intercepts: npt.NDArray[np.float64]
    slopes: npt.NDArray[np.float64]  # the sigmoid calibration: p = 1 / (1 + exp(a·d + b))
    offsets: npt.NDArray[np.float64]


@cache
def load() -> _Model:
    """Read the model shipped in `alt-profanity-check` (about 1.5 s with scikit-learn's import)."""
    from profanity_check import profanity_check as library

    calibrated = library.model.calibrated_classifiers_
    return _Model(
        vectorizer=library.vectorizer,
        weights=np.vstack([c.estimator.coef_.ravel() for c in calibrated]).T,
        intercepts=np.array([c.estimator.intercept_[0] for c in calibrated]),
        slopes=np.array([c.calibrators[0].a_ for c in calibrated]),
        offsets=np.array([c.calibrators[0].b_ for c in calibrated]),
    )


def offensive_probability(text: str) -> float:
    """The calibrated probability (0 to 1) that the text is offensive, as the library gives it."""
    model = load()
    decision = np.asarray(model.vectorizer.transform([text]) @ model.weights).ravel()
    decision = decision + model.intercepts
    return float(np.mean(1.0 / (1.0 + np.exp(model.slopes * decision + model.offsets))))
