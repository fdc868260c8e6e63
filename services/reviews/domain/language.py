"""How likely a text is offensive: the classifier `alt-profanity-check` ships in its package (a
TF-IDF vectoriser and five sigmoid-calibrated linear SVMs trained on labelled comments).

A pure function of the text. The library's model is scikit-learn objects, and reading them costs
a process about 700 modules and 107 MB (scikit-learn and SciPy). The service reads instead what
scoring a text needs, exported from the library to `offensive_model.json` beside this file
(`python -m devtools.export_offensive_model`; a test fails when the file and the installed
library differ, and another holds the probabilities equal to the library's): each vocabulary
word's idf and weight in each calibrated model, the intercepts, the sigmoids, and the
vectoriser's token pattern. Scoring is the library's arithmetic: lowercase, tokens, each known
word's count times its idf, the vector scaled to length 1 (TF-IDF, l2), its product with each
model's weights, the mean of the sigmoids. About 0.06 ms a comment; the library's
`predict_prob` took 1-10 ms (scikit-learn's per-call checks and a sparse matrix for a few words).
The vectoriser drops English stop words; none is in its vocabulary, so counting only vocabulary
words drops them too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MODEL_FILE = Path(__file__).with_name("offensive_model.json")


@dataclass(frozen=True)
class _Model:
    tokens: Callable[[str], list[str]]
    """The vectoriser's tokens of an already lowercased text."""
    features: dict[str, tuple[float, tuple[float, ...]]]
    """Per vocabulary word: its idf, and its weight in each calibrated model."""
    intercepts: tuple[float, ...]
    slopes: tuple[float, ...]  # the sigmoid calibration: p = 1 / (1 + exp(a·d + b))
    offsets: tuple[float, ...]


@cache
def load() -> _Model:
    """Read the exported model (once; the service does it at start)."""
    data = json.loads(MODEL_FILE.read_text())
    return _Model(
        tokens=re.compile(data["token_pattern"]).findall,
        features={word: (values[0], tuple(values[1:])) for word, values in data["words"].items()},
        intercepts=tuple(data["intercepts"]),
        slopes=tuple(data["slopes"]),
        offsets=tuple(data["offsets"]),
    )


def offensive_probability(text: str) -> float:
    """The calibrated probability (0 to 1) that the text is offensive, as the library gives it:
    each known word's count times its idf, the vector scaled to length 1 (TF-IDF, l2), its
    product with each model's weights, the sigmoids' mean."""
    model = load()
    counts: dict[str, int] = {}
    for word in model.tokens(text.lower()):
        if word in model.features:
            counts[word] = counts.get(word, 0) + 1
    decision = list(model.intercepts)
    if counts:
        scaled = [
            (count * model.features[word][0], model.features[word][1])
            for word, count in counts.items()
        ]
        norm = math.sqrt(sum(value * value for value, _ in scaled))
        for value, weights in scaled:
            share = value / norm
            for k, weight in enumerate(weights):
                decision[k] += share * weight
    sigmoids = [
        1.0 / (1.0 + math.exp(a * d + b))
        for a, d, b in zip(model.slopes, decision, model.offsets, strict=True)
    ]
    return sum(sigmoids) / len(sigmoids)
