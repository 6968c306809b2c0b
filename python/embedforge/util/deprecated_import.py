"""Old module paths, served as aliases of the modules that now hold their contents.

sentence-transformers moved most of its modules in 5.4 and 6.0 (``sentence_transformers.models`` became
``sentence_transformer.modules``, ``losses`` became ``sentence_transformer.losses``, ...) and keeps the
old paths importable with a DeprecationWarning. embedforge follows the same layout and serves the same
old paths from one table: a finder on ``sys.meta_path`` answers an old path with the module at its new
path (never a second copy of it), and warns once per path, naming the new one.

An old path can also be the name of a class its parent package exports
(``embedforge.readers.InputExample`` is both): the parent keeps the class as its attribute.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Sequence

#: Old module path -> the module that serves it now.
DEPRECATED_MODULE_PATHS: dict[str, str] = {
    "embedforge.sentence_transformer.modules.normalize": "embedforge.base.modules.normalize",
    "embedforge.SentenceTransformer": "embedforge.sentence_transformer.model",
    "embedforge.cross_encoder.CrossEncoder": "embedforge.cross_encoder.model",
    "embedforge.quantization": "embedforge.util.quantization",
    "embedforge.similarity_functions": "embedforge.util.similarity",
    "embedforge.training_args": "embedforge.sentence_transformer.training_args",
    "embedforge.trainer": "embedforge.sentence_transformer.trainer",
    "embedforge.sampler": "embedforge.base.sampler",
    "embedforge.peft_mixin": "embedforge.base.peft_mixin",
    "embedforge.model_card": "embedforge.sentence_transformer.model_card",
    "embedforge.data_collator": "embedforge.sentence_transformer.data_collator",
    "embedforge.LoggingHandler": "embedforge.util.logging",
    "embedforge.datasets": "embedforge.sentence_transformer.datasets",
    "embedforge.datasets.DenoisingAutoEncoderDataset": "embedforge.sentence_transformer.datasets.denoising_auto_encoder",
    "embedforge.datasets.NoDuplicatesDataLoader": "embedforge.sentence_transformer.datasets.no_duplicates_dataloader",
    "embedforge.datasets.ParallelSentencesDataset": "embedforge.sentence_transformer.datasets.parallel_sentences",
    "embedforge.datasets.SentenceLabelDataset": "embedforge.sentence_transformer.datasets.sentence_label",
    "embedforge.datasets.SentencesDataset": "embedforge.sentence_transformer.datasets.sentences",
    "embedforge.evaluation": "embedforge.sentence_transformer.evaluation",
    "embedforge.evaluation.BinaryClassificationEvaluator": "embedforge.sentence_transformer.evaluation.binary_classification",
    "embedforge.evaluation.EmbeddingSimilarityEvaluator": "embedforge.sentence_transformer.evaluation.embedding_similarity",
    "embedforge.evaluation.InformationRetrievalEvaluator": "embedforge.sentence_transformer.evaluation.information_retrieval",
    "embedforge.evaluation.LabelAccuracyEvaluator": "embedforge.sentence_transformer.evaluation.label_accuracy",
    "embedforge.evaluation.MSEEvaluator": "embedforge.sentence_transformer.evaluation.mse",
    "embedforge.evaluation.NanoBEIREvaluator": "embedforge.sentence_transformer.evaluation.nano_beir",
    "embedforge.evaluation.ParaphraseMiningEvaluator": "embedforge.sentence_transformer.evaluation.paraphrase_mining",
    "embedforge.evaluation.RerankingEvaluator": "embedforge.sentence_transformer.evaluation.reranking",
    "embedforge.evaluation.SentenceEvaluator": "embedforge.base.evaluation.evaluator",
    "embedforge.evaluation.SequentialEvaluator": "embedforge.base.evaluation.sequential",
    "embedforge.evaluation.SimilarityFunction": "embedforge.util.similarity",
    "embedforge.evaluation.TranslationEvaluator": "embedforge.sentence_transformer.evaluation.translation",
    "embedforge.evaluation.TripletEvaluator": "embedforge.sentence_transformer.evaluation.triplet",
    "embedforge.losses": "embedforge.sentence_transformer.losses",
    "embedforge.losses.AdaptiveLayerLoss": "embedforge.sentence_transformer.losses.adaptive_layer",
    "embedforge.losses.AnglELoss": "embedforge.sentence_transformer.losses.angle",
    "embedforge.losses.BatchAllTripletLoss": "embedforge.sentence_transformer.losses.batch_all_triplet",
    "embedforge.losses.BatchHardSoftMarginTripletLoss": "embedforge.sentence_transformer.losses.batch_hard_soft_margin_triplet",
    "embedforge.losses.BatchHardTripletLoss": "embedforge.sentence_transformer.losses.batch_hard_triplet",
    "embedforge.losses.BatchSemiHardTripletLoss": "embedforge.sentence_transformer.losses.batch_semi_hard_triplet",
    "embedforge.losses.CachedGISTEmbedLoss": "embedforge.sentence_transformer.losses.cached_gist_embed",
    "embedforge.losses.CachedMultipleNegativesRankingLoss": "embedforge.sentence_transformer.losses.cached_multiple_negatives_ranking",
    "embedforge.losses.CachedMultipleNegativesSymmetricRankingLoss": "embedforge.sentence_transformer.losses.cached_multiple_negatives_symmetric_ranking",
    "embedforge.losses.CoSENTLoss": "embedforge.sentence_transformer.losses.cosent",
    "embedforge.losses.ContrastiveLoss": "embedforge.sentence_transformer.losses.contrastive",
    "embedforge.losses.ContrastiveTensionLoss": "embedforge.sentence_transformer.losses.contrastive_tension",
    "embedforge.losses.CosineSimilarityLoss": "embedforge.sentence_transformer.losses.cosine_similarity",
    "embedforge.losses.DenoisingAutoEncoderLoss": "embedforge.sentence_transformer.losses.denoising_auto_encoder",
    "embedforge.losses.DistillKLDivLoss": "embedforge.sentence_transformer.losses.distill_kl_div",
    "embedforge.losses.GISTEmbedLoss": "embedforge.sentence_transformer.losses.gist_embed",
    "embedforge.losses.MSELoss": "embedforge.sentence_transformer.losses.mse",
    "embedforge.losses.MarginMSELoss": "embedforge.sentence_transformer.losses.margin_mse",
    "embedforge.losses.Matryoshka2dLoss": "embedforge.sentence_transformer.losses.matryoshka_2d",
    "embedforge.losses.MatryoshkaLoss": "embedforge.sentence_transformer.losses.matryoshka",
    "embedforge.losses.MegaBatchMarginLoss": "embedforge.sentence_transformer.losses.mega_batch_margin",
    "embedforge.losses.MultipleNegativesRankingLoss": "embedforge.sentence_transformer.losses.multiple_negatives_ranking",
    "embedforge.losses.MultipleNegativesSymmetricRankingLoss": "embedforge.sentence_transformer.losses.multiple_negatives_symmetric_ranking",
    "embedforge.losses.OnlineContrastiveLoss": "embedforge.sentence_transformer.losses.online_contrastive",
    "embedforge.losses.SoftmaxLoss": "embedforge.sentence_transformer.losses.softmax",
    "embedforge.losses.TripletLoss": "embedforge.sentence_transformer.losses.triplet",
    "embedforge.models": "embedforge.sentence_transformer.modules",
    "embedforge.models.Asym": "embedforge.base.modules.router",
    "embedforge.models.BoW": "embedforge.sentence_transformer.modules.bow",
    "embedforge.models.CLIPModel": "embedforge.sentence_transformer.modules.clip_model",
    "embedforge.models.CNN": "embedforge.sentence_transformer.modules.cnn",
    "embedforge.models.Dense": "embedforge.base.modules.dense",
    "embedforge.models.Dropout": "embedforge.sentence_transformer.modules.dropout",
    "embedforge.models.InputModule": "embedforge.base.modules.input_module",
    "embedforge.models.LSTM": "embedforge.sentence_transformer.modules.lstm",
    "embedforge.models.LayerNorm": "embedforge.sentence_transformer.modules.layer_norm",
    "embedforge.models.Module": "embedforge.base.modules.module",
    "embedforge.models.Normalize": "embedforge.base.modules.normalize",
    "embedforge.models.Pooling": "embedforge.sentence_transformer.modules.pooling",
    "embedforge.models.Router": "embedforge.base.modules.router",
    "embedforge.models.StaticEmbedding": "embedforge.sentence_transformer.modules.static_embedding",
    "embedforge.models.Transformer": "embedforge.base.modules.transformer",
    "embedforge.models.WeightedLayerPooling": "embedforge.sentence_transformer.modules.weighted_layer_pooling",
    "embedforge.models.WordEmbeddings": "embedforge.sentence_transformer.modules.word_embeddings",
    "embedforge.models.WordWeights": "embedforge.sentence_transformer.modules.word_weights",
    "embedforge.models.tokenizer": "embedforge.sentence_transformer.modules.tokenizer",
    "embedforge.models.tokenizer.PhraseTokenizer": "embedforge.sentence_transformer.modules.tokenizer.phrase",
    "embedforge.models.tokenizer.WhitespaceTokenizer": "embedforge.sentence_transformer.modules.tokenizer.whitespace",
    "embedforge.models.tokenizer.WordTokenizer": "embedforge.sentence_transformer.modules.tokenizer.word",
    "embedforge.readers": "embedforge.sentence_transformer.readers",
    "embedforge.readers.InputExample": "embedforge.sentence_transformer.readers.input_example",
    "embedforge.readers.LabelSentenceReader": "embedforge.sentence_transformer.readers.label_sentence",
    "embedforge.readers.PairedFilesReader": "embedforge.sentence_transformer.readers.paired_files",
    "embedforge.readers.NLIDataReader": "embedforge.sentence_transformer.readers.nli_data",
    "embedforge.readers.STSDataReader": "embedforge.sentence_transformer.readers.sts_data",
    "embedforge.readers.TripletReader": "embedforge.sentence_transformer.readers.triplet",
    "embedforge.cross_encoder.losses.BinaryCrossEntropyLoss": "embedforge.cross_encoder.losses.binary_cross_entropy",
    "embedforge.cross_encoder.losses.CachedMultipleNegativesRankingLoss": "embedforge.cross_encoder.losses.cached_multiple_negatives_ranking",
    "embedforge.cross_encoder.losses.CrossEntropyLoss": "embedforge.cross_encoder.losses.cross_entropy",
    "embedforge.cross_encoder.losses.LambdaLoss": "embedforge.cross_encoder.losses.lambda_loss",
    "embedforge.cross_encoder.losses.ListMLELoss": "embedforge.cross_encoder.losses.list_mle",
    "embedforge.cross_encoder.losses.ListNetLoss": "embedforge.cross_encoder.losses.list_net",
    "embedforge.cross_encoder.losses.MSELoss": "embedforge.cross_encoder.losses.mse",
    "embedforge.cross_encoder.losses.MarginMSELoss": "embedforge.cross_encoder.losses.margin_mse",
    "embedforge.cross_encoder.losses.MultipleNegativesRankingLoss": "embedforge.cross_encoder.losses.multiple_negatives_ranking",
    "embedforge.cross_encoder.losses.PListMLELoss": "embedforge.cross_encoder.losses.plist_mle",
    "embedforge.cross_encoder.losses.RankNetLoss": "embedforge.cross_encoder.losses.rank_net",
    "embedforge.cross_encoder.evaluation.CEBinaryAccuracyEvaluator": "embedforge.cross_encoder.evaluation.deprecated",
    "embedforge.cross_encoder.evaluation.CEBinaryClassificationEvaluator": "embedforge.cross_encoder.evaluation.deprecated",
    "embedforge.cross_encoder.evaluation.CEF1Evaluator": "embedforge.cross_encoder.evaluation.deprecated",
    "embedforge.cross_encoder.evaluation.CESoftmaxAccuracyEvaluator": "embedforge.cross_encoder.evaluation.deprecated",
    "embedforge.cross_encoder.evaluation.CECorrelationEvaluator": "embedforge.cross_encoder.evaluation.deprecated",
    "embedforge.cross_encoder.evaluation.CERerankingEvaluator": "embedforge.cross_encoder.evaluation.deprecated",
}

#: embedforge's own earlier module paths (before the sentence-transformers 6 layout) that the table above lacks.
EARLIER_EMBEDFORGE_PATHS: dict[str, str] = {
    "embedforge.fit_mixin": "embedforge.sentence_transformer.fit_mixin",
    "embedforge.fit_callbacks": "embedforge.base.fit_callbacks",
    "embedforge.models.module": "embedforge.base.modules.module",
    "embedforge.models.transformer": "embedforge.base.modules.transformer",
    "embedforge.models.router": "embedforge.base.modules.router",
    "embedforge.models.dense": "embedforge.base.modules.dense",
    "embedforge.models.normalize": "embedforge.base.modules.normalize",
    "embedforge.models.distillation": "embedforge.static.distill",
    "embedforge.models.bag_mean_rows": "embedforge.static.bag_mean_rows",
    "embedforge.losses.base": "embedforge.base.losses.base",
    "embedforge.losses.gradcache": "embedforge.base.losses.gradcache",
    "embedforge.evaluation.evaluator": "embedforge.base.evaluation.evaluator",
    "embedforge.evaluation.sequential": "embedforge.base.evaluation.sequential",
    "embedforge.evaluation.similarity_function": "embedforge.sentence_transformer.evaluation.similarity_function",
    "embedforge.optim.static_training": "embedforge.sentence_transformer.static_training",
    "embedforge.model_card.data": "embedforge.base.model_card.data",
    "embedforge.model_card.render": "embedforge.base.model_card.render",
    "embedforge.model_card.callback": "embedforge.base.model_card.callback",
    "embedforge.model_card.dataset_stats": "embedforge.base.model_card.dataset_stats",
    "embedforge.model_card.markdown": "embedforge.base.model_card.markdown",
}


class _KeepClassAttributes(types.ModuleType):
    """A package whose class and function attributes are never replaced by an aliased submodule of the same name.

    After importing ``parent.Child``, the import system sets ``parent.Child`` to the module it loaded;
    where ``Child`` is also a class the package exports, the class must stay.
    """

    def __setattr__(self, name: str, value: object) -> None:
        current = self.__dict__.get(name)
        if isinstance(value, types.ModuleType) and current is not None and not isinstance(current, types.ModuleType):
            return
        super().__setattr__(name, value)


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system a module that is already loaded, without running it again."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system points __spec__ at the old name; the module's own name and spec stay canonical.
        module.__spec__ = self._spec


class DeprecatedPathFinder(importlib.abc.MetaPathFinder):
    """Serves every old path of :data:`DEPRECATED_MODULE_PATHS` with the module at its new path, with a warning."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new_path = new_module_path(fullname)
        if new_path is None:
            return None
        _warn_from_caller(
            f"Importing from '{fullname}' is deprecated and will be removed in a future version. "
            f"Please use '{new_path}' instead."
        )
        module = importlib.import_module(new_path)
        parent = sys.modules.get(fullname.rpartition(".")[0])
        if parent is not None and type(parent) is types.ModuleType:
            parent.__class__ = _KeepClassAttributes
        # A package stays a package under its old name, so find_spec() callers see its submodules.
        is_package = hasattr(module, "__path__")
        spec = importlib.util.spec_from_loader(fullname, _AliasLoader(module), is_package=is_package)
        if spec is not None and is_package:
            spec.submodule_search_locations = list(module.__path__)
        return spec


def new_module_path(old_path: str) -> str | None:
    """Where an old module path lives now, or None when it is not an old path.

    Besides the listed paths, a submodule of a moved package moves with it
    (``embedforge.losses.matryoshka`` is ``embedforge.sentence_transformer.losses.matryoshka``), so no
    module is ever loaded a second time under its old name.
    """
    listed = DEPRECATED_MODULE_PATHS.get(old_path) or EARLIER_EMBEDFORGE_PATHS.get(old_path)
    if listed is not None:
        return listed
    parent, _, child = old_path.rpartition(".")
    while parent:
        moved = DEPRECATED_MODULE_PATHS.get(parent) or EARLIER_EMBEDFORGE_PATHS.get(parent)
        if moved is not None:
            candidate = f"{moved}.{child}"
            try:
                found = importlib.util.find_spec(candidate) is not None
            except ModuleNotFoundError:
                found = False
            return candidate if found else None
        parent, _, head = parent.rpartition(".")
        child = f"{head}.{child}"
    return None


def _warn_from_caller(message: str) -> None:
    """Warn at the first frame outside the import system and this file: the user's import statement."""
    frame = sys._getframe(1)
    while frame is not None and ("importlib" in frame.f_code.co_filename or frame.f_code.co_filename == __file__):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return
    warnings.warn_explicit(
        message,
        DeprecationWarning,
        filename=frame.f_code.co_filename,
        lineno=frame.f_lineno,
        module=frame.f_globals.get("__name__", frame.f_code.co_filename),
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )


def install_deprecated_paths() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, DeprecatedPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeprecatedPathFinder())


__all__ = [
    "DEPRECATED_MODULE_PATHS",
    "EARLIER_EMBEDFORGE_PATHS",
    "DeprecatedPathFinder",
    "install_deprecated_paths",
    "new_module_path",
]
