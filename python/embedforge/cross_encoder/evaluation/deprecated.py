"""The evaluator names CrossEncoder used before sentence-transformers 4, kept importable (they warn)."""

from __future__ import annotations

import warnings
from typing import Any

from .classification import CrossEncoderClassificationEvaluator
from .correlation import CrossEncoderCorrelationEvaluator
from .reranking import CrossEncoderRerankingEvaluator


class _Renamed:
    """Warns once per construction that the class has a new name."""

    replacement = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(
            f"{type(self).__name__} is deprecated; use {self.replacement} instead", DeprecationWarning, stacklevel=2
        )
        super().__init__(*args, **kwargs)


class CEBinaryAccuracyEvaluator(_Renamed, CrossEncoderClassificationEvaluator):
    """Deprecated: :class:`CrossEncoderClassificationEvaluator` (binary and multi-class) replaces it."""

    replacement = "CrossEncoderClassificationEvaluator"


class CEBinaryClassificationEvaluator(_Renamed, CrossEncoderClassificationEvaluator):
    """Deprecated: :class:`CrossEncoderClassificationEvaluator` replaces it."""

    replacement = "CrossEncoderClassificationEvaluator"


class CEF1Evaluator(_Renamed, CrossEncoderClassificationEvaluator):
    """Deprecated: :class:`CrossEncoderClassificationEvaluator` replaces it."""

    replacement = "CrossEncoderClassificationEvaluator"


class CESoftmaxAccuracyEvaluator(_Renamed, CrossEncoderClassificationEvaluator):
    """Deprecated: :class:`CrossEncoderClassificationEvaluator` replaces it."""

    replacement = "CrossEncoderClassificationEvaluator"


class CECorrelationEvaluator(_Renamed, CrossEncoderCorrelationEvaluator):
    """Deprecated: renamed :class:`CrossEncoderCorrelationEvaluator`."""

    replacement = "CrossEncoderCorrelationEvaluator"


class CERerankingEvaluator(_Renamed, CrossEncoderRerankingEvaluator):
    """Deprecated: renamed :class:`CrossEncoderRerankingEvaluator`."""

    replacement = "CrossEncoderRerankingEvaluator"
