"""Evaluators: call one on a model to get a dict of metrics (sentence-transformers' evaluation API).

The retrieval-based evaluators live in their own modules and are imported on first access, so
importing this package stays cheap and each module can be developed on its own.
"""

from __future__ import annotations

import importlib
from typing import Any

from embedforge.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
from embedforge.base.evaluation.sequential import SequentialEvaluator

from .binary_classification import BinaryClassificationEvaluator
from .embedding_similarity import EmbeddingSimilarityEvaluator
from .label_accuracy import LabelAccuracyEvaluator
from .mse import MSEEvaluator
from .mse_from_dataframe import MSEEvaluatorFromDataFrame
from .similarity_function import SimilarityFunction
from .translation import TranslationEvaluator
from .triplet import TripletEvaluator

# Public name -> submodule that defines it, resolved by __getattr__ below.
_LAZY = {
    "InformationRetrievalEvaluator": "information_retrieval",
    "NanoBEIREvaluator": "nano_beir",
    "ParaphraseMiningEvaluator": "paraphrase_mining",
    "RerankingEvaluator": "reranking",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BaseEvaluator",
    "BinaryClassificationEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "LabelAccuracyEvaluator",
    "MSEEvaluator",
    "MSEEvaluatorFromDataFrame",
    "NanoBEIREvaluator",
    "ParaphraseMiningEvaluator",
    "RerankingEvaluator",
    "SentenceEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
    "TranslationEvaluator",
    "TripletEvaluator",
]
