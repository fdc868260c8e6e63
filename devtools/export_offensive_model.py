"""Export the offensive-language model that `alt-profanity-check` ships to the plain data file
the reviews service reads (`services/reviews/domain/offensive_model.json`).

    python -m devtools.export_offensive_model          # write it
    python -m devtools.export_offensive_model --check  # exit 1 if it differs from the library's

The library's model is a scikit-learn TF-IDF vectoriser and five sigmoid-calibrated linear
SVMs. Reading it means importing scikit-learn and SciPy (about 700 modules, 107 MB of a
process's memory); the service needs only each vocabulary word's idf and weights, the
intercepts and the sigmoids, and the vectoriser's tokens: this file. A unit test runs `--check`,
so the file cannot drift from the installed library.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from services.reviews.domain.language import MODEL_FILE


def exported() -> dict[str, Any]:
    """The model as the service reads it; refuses a vectoriser it would not read alike."""
    from profanity_check import profanity_check as library

    vectorizer = library.vectorizer
    expected = {
        "analyzer": "word",
        "lowercase": True,
        "ngram_range": (1, 1),
        "norm": "l2",
        "preprocessor": None,
        "strip_accents": None,
        "sublinear_tf": False,
        "tokenizer": None,
        "use_idf": True,
    }
    params = vectorizer.get_params()
    differing = {k: params[k] for k, v in expected.items() if params[k] != v}
    if differing:
        raise SystemExit(f"the library's vectoriser changed: {differing}")
    stop_words = vectorizer.get_stop_words() or frozenset()
    if stop_words & vectorizer.vocabulary_.keys():
        raise SystemExit("stop words in the vocabulary: the service would count them")
    calibrated = library.model.calibrated_classifiers_
    idf = vectorizer.idf_
    coefficients = [c.estimator.coef_.ravel() for c in calibrated]
    return {
        "source": "alt-profanity-check",
        "token_pattern": vectorizer.token_pattern,
        "words": {
            word: [float(idf[index]), *(float(c[index]) for c in coefficients)]
            for word, index in sorted(vectorizer.vocabulary_.items())
        },
        "intercepts": [float(c.estimator.intercept_[0]) for c in calibrated],
        "slopes": [float(c.calibrators[0].a_) for c in calibrated],
        "offsets": [float(c.calibrators[0].b_) for c in calibrated],
    }


def text_of(model: dict[str, Any]) -> str:
    return json.dumps(model, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--to", type=Path, default=MODEL_FILE)
    args = parser.parse_args(argv)
    text = text_of(exported())
    if args.check:
        if not args.to.exists() or args.to.read_text() != text:
            print(f"{args.to} differs from the installed library's model", file=sys.stderr)
            return 1
        return 0
    args.to.write_text(text)
    print(f"{args.to}: {len(text):,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
