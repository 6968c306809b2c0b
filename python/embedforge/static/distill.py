"""Distil a static token-embedding table from a local transformer, the way model2vec does.

The recipe (model2vec's ``distill``, release 0.10): every token of the tokenizer's vocabulary, and every extra
word the caller asks for, is run through the transformer on its own, wrapped in the tokenizer's
begin/end-of-sequence tokens; the hidden states are mean-pooled into one vector per token; PCA rotates (and
optionally shrinks) the table; each row is scaled by a SIF weight derived from a Zipf prior on its rank. The
result is a ``tokenizers.Tokenizer`` plus a ``[vocab, dims]`` float32 matrix whose row ``i`` is token id ``i``,
ready for :class:`embedforge.sentence_transformer.modules.StaticEmbedding`.

Only torch, transformers, tokenizers, numpy (and tqdm for the bar) are used: model2vec and its tokenizer-surgery
dependency are not needed at run time; the test suite uses them as an oracle. Where model2vec 0.10 has a bug we
differ on purpose: a word outside the vocabulary is encoded without the fixed-length padding some tokenizer files
carry (model2vec averages in up to 128 [PAD] states for all-MiniLM-L6-v2), and a Unigram tokenizer's ``unk_id`` is
renumbered with the vocabulary (model2vec leaves it pointing at a stale id). Adding whole words to a BPE tokenizer
(which needs new merge rules) is not supported and fails with a clear error.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from embedforge._internal.local_path import require_local_dir
from embedforge.exceptions import InvalidArgumentError, ModelFormatError, TokenizerError

logger = logging.getLogger(__name__)

__all__ = ["distill_static_embeddings"]

# Data types a distilled table can be rounded to (model2vec's ``DType`` values).
QUANTIZE_TYPES = ("float16", "float32", "float64", "int8")

# model2vec's StaticModel enables truncation at this many tokens on the tokenizer it hands out, and
# sentence-transformers' StaticEmbedding keeps the tokenizer as given, so a distilled model truncates here too.
DEFAULT_MAX_LENGTH = 512

_SUPPORTED_MODEL_TYPES = ("WordPiece", "WordLevel", "BPE", "Unigram")


def distill_static_embeddings(
    model_name_or_path: str,
    vocabulary: list[str] | None = None,
    device: str | None = None,
    pca_dims: float | str | None = 256,
    apply_zipf: bool | None = None,
    sif_coefficient: float | None = 1e-4,
    token_remove_pattern: str | None = r"\[unused\d+\]",
    quantize_to: str = "float32",
    use_subword: bool = True,
    batch_size: int = 1024,
    show_progress_bar: bool = True,
) -> tuple[Tokenizer, torch.Tensor]:
    r"""Distil a static embedding table from the transformer in a local folder, as model2vec's ``distill`` does.

    Steps, in order:

    1. Vocabulary. Start from the tokenizer's vocabulary (ordered by id). Drop every token that
       ``re.match(token_remove_pattern, token)`` accepts (the unknown token of a WordPiece/WordLevel tokenizer is
       kept, since those models cannot work without it) and every added/special token other than the unknown and
       padding tokens (``[CLS]``, ``[SEP]``, ``[MASK]``, ...). The survivors are renumbered contiguously, so the
       returned tokenizer has a smaller vocabulary than the original when anything was dropped.
    2. Extra words (``vocabulary``). Each word is normalized and pre-tokenized by the new tokenizer. A word that
       stays a single piece is appended to the vocabulary unless already present (or matching the remove pattern);
       a word that splits (``"New York"``) is appended as a non-special added token holding its normalized form;
       empty words are skipped. With ``use_subword=False`` the subword vocabulary is dropped as well (only the
       unknown and padding tokens stay), so the tokenizer knows whole words only; a vocabulary is then required.
    3. Forward passes. A token of the original vocabulary is fed as ``bos + [its id] + eos`` (the special tokens
       the tokenizer's post-processor adds, e.g. ``[CLS] tok [SEP]``); any other string is encoded by the original
       tokenizer with special tokens. The last hidden states are mean-pooled over all positions (specials included).
    4. PCA (no whitening): centre, rotate onto the covariance eigenvectors, keep ``pca_dims`` components and fix
       each component's sign so that its largest-magnitude score is positive. ``None`` skips PCA; ``"auto"`` or a
       value above the hidden size rotates without reducing; a float in (0, 1) keeps enough components to explain
       that share of the variance; PCA is skipped when ``pca_dims`` is not below the number of tokens.
    5. Weighting: row ``r`` (by token id) is multiplied by ``a / (a + p(r))`` with ``a = sif_coefficient`` and the
       Zipf prior ``p(r) = (1 / (r + 2)) / sum_j 1 / (j + 2)``. ``sif_coefficient=None`` skips it.
    6. ``quantize_to`` rounds the table like model2vec does (``float16``; ``int8`` scales the largest magnitude
       to 127); the values are returned as float32 either way.

    Args:
        model_name_or_path: A local folder holding a Hugging Face transformer and its fast tokenizer.
        vocabulary: Extra words to embed as whole tokens (see step 2).
        device: Torch device for the forward passes; default ``"cuda"`` when available, else ``"cpu"``.
        pca_dims: Number of PCA components, ``"auto"``, a variance share in (0, 1), or ``None`` (see step 4).
        apply_zipf: Deprecated in model2vec and absent from its current release, where weighting depends on
            ``sif_coefficient`` alone. ``False`` disables the weighting (as model2vec 0.4-0.6 did); ``True`` and
            ``None`` leave ``sif_coefficient`` in charge.
        sif_coefficient: SIF coefficient in (0, 1), or ``None`` for no weighting.
        token_remove_pattern: Regular expression matched (``re.match``) against every token; matches are removed.
        quantize_to: One of ``"float16"``, ``"float32"``, ``"float64"``, ``"int8"``.
        use_subword: Keep the tokenizer's subword vocabulary (see step 2).
        batch_size: Number of tokens per forward pass.
        show_progress_bar: Show a tqdm bar over the forward passes.

    Returns:
        The tokenizer whose ids index the rows (no post-processor, so no [CLS]/[SEP]; no padding; truncation at
        512 tokens, as on the tokenizer model2vec hands to sentence-transformers) and the ``[vocab, dims]`` float32
        embedding matrix.

    Raises:
        ModelNotFoundError: ``model_name_or_path`` is not a local folder.
        ModelFormatError: The folder does not hold a loadable transformer.
        TokenizerError: The tokenizer is not a fast tokenizer of a supported kind.
        InvalidArgumentError: An argument is out of range, or no token is left to embed.
    """
    sif_coefficient = _resolve_sif_coefficient(apply_zipf, sif_coefficient)
    remove_regex = _compile_pattern(token_remove_pattern)
    _validate_arguments(vocabulary, pca_dims, quantize_to, use_subword, batch_size)
    path = require_local_dir(model_name_or_path, "model_name_or_path")

    hf_tokenizer, model = _load(path)
    backend: Tokenizer = hf_tokenizer.backend_tokenizer
    plan = _plan_vocabulary(backend, hf_tokenizer, vocabulary or [], remove_regex, use_subword)
    if not plan.tokens:
        raise InvalidArgumentError(
            f"token_remove_pattern={token_remove_pattern!r}: no token is left to embed after removing matches"
        )

    inputs = _model_inputs(backend, plan.tokens)
    pad_id = backend.token_to_id(hf_tokenizer.pad_token) if hf_tokenizer.pad_token is not None else None
    embeddings = _mean_pooled_embeddings(
        model,
        inputs,
        device=_pick_device(device),
        pad_token_id=pad_id if pad_id is not None else 0,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
    )

    table = _apply_pca(embeddings.astype(np.float64), pca_dims)
    table = table * _sif_weights(len(table), sif_coefficient)[:, None]
    table = _quantize(table, quantize_to)
    return plan.tokenizer, torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))


# --------------------------------------------------------------------------------------------------- arguments


def _resolve_sif_coefficient(apply_zipf: bool | None, sif_coefficient: float | None) -> float | None:
    """Fold the deprecated ``apply_zipf`` switch into the SIF coefficient and check the coefficient's range."""
    if apply_zipf is False and sif_coefficient is not None:
        # An explicit "no Zipf" wins over the default coefficient, as in model2vec's deprecation shim.
        logger.info("apply_zipf=False: ignoring sif_coefficient=%r, no weighting is applied", sif_coefficient)
        sif_coefficient = None
    if sif_coefficient is not None and not 0.0 < sif_coefficient < 1.0:
        raise InvalidArgumentError(
            f"sif_coefficient={sif_coefficient!r}: expected a value strictly between 0 and 1, or None for no weighting"
        )
    return sif_coefficient


def _compile_pattern(token_remove_pattern: str | None) -> re.Pattern[str] | None:
    """Compile the removal pattern, turning a regex syntax error into an argument error."""
    if token_remove_pattern is None:
        return None
    try:
        return re.compile(token_remove_pattern)
    except re.error as exc:
        raise InvalidArgumentError(
            f"token_remove_pattern={token_remove_pattern!r} is not a valid regular expression: {exc}"
        ) from exc


def _validate_arguments(
    vocabulary: Sequence[str] | None,
    pca_dims: float | str | None,
    quantize_to: str,
    use_subword: bool,
    batch_size: int,
) -> None:
    """Reject bad arguments before the (slow) model load, naming the argument and what was expected."""
    if vocabulary is not None and (
        isinstance(vocabulary, str) or not all(isinstance(word, str) for word in vocabulary)
    ):
        raise InvalidArgumentError("vocabulary: expected a list of strings or None")
    if not use_subword and not vocabulary:
        raise InvalidArgumentError(
            "use_subword=False keeps only the words of `vocabulary`, but no vocabulary was given: "
            "pass a vocabulary or set use_subword=True"
        )
    if pca_dims is not None and pca_dims != "auto":
        if isinstance(pca_dims, int) and not isinstance(pca_dims, bool):
            if pca_dims < 1:
                raise InvalidArgumentError(f"pca_dims={pca_dims!r}: expected a positive number of components")
        elif isinstance(pca_dims, float):
            if not 0.0 < pca_dims < 1.0:
                raise InvalidArgumentError(f"pca_dims={pca_dims!r}: a float must be a variance share in (0, 1)")
        else:
            raise InvalidArgumentError(f"pca_dims={pca_dims!r}: expected an int, a float in (0, 1), 'auto' or None")
    if quantize_to not in QUANTIZE_TYPES:
        raise InvalidArgumentError(f"quantize_to={quantize_to!r}: expected one of {', '.join(QUANTIZE_TYPES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size={batch_size!r}: expected a positive integer")


def _load(path: str) -> tuple[Any, torch.nn.Module]:
    """Load the fast tokenizer and the bare transformer from a local folder, never touching a network."""
    from transformers import AutoModel, AutoTokenizer

    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, use_fast=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"model_name_or_path={path!r}: could not load a tokenizer from it: {exc}") from exc
    if not isinstance(getattr(hf_tokenizer, "backend_tokenizer", None), Tokenizer):
        raise TokenizerError(
            f"model_name_or_path={path!r}: distillation needs a fast (tokenizers-backed) tokenizer, "
            f"got {type(hf_tokenizer).__name__}"
        )
    try:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"model_name_or_path={path!r}: could not load a transformer from it: {exc}") from exc
    return hf_tokenizer, model


def _pick_device(device: str | None) -> str:
    """Use the requested device, else CUDA when present (model2vec skips MPS on current torch, and so do we)."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


# -------------------------------------------------------------------------------------------------- vocabulary


class _VocabularyPlan:
    """The new tokenizer and its tokens in id order (the strings to embed, one row each)."""

    def __init__(self, tokenizer: Tokenizer, tokens: list[str]) -> None:
        self.tokenizer = tokenizer
        self.tokens = tokens


def _ordered_vocab(model_json: dict[str, Any]) -> list[str]:
    """Tokens of a tokenizer model, ordered by id (gaps in the ids are closed up)."""
    if model_json["type"] == "Unigram":
        return [entry[0] for entry in model_json["vocab"]]
    return [token for token, _ in sorted(model_json["vocab"].items(), key=lambda item: item[1])]


def _special_wrapping(backend: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the post-processor puts before and after a single sequence (bos and eos, e.g. [CLS] and [SEP]).

    Found by encoding a probe with and without special tokens: this covers every post-processor kind
    (TemplateProcessing, BertProcessing, RobertaProcessing, sequences of them) without parsing each one.
    """
    probe = Tokenizer.from_str(backend.to_str())
    probe.no_padding()
    probe.no_truncation()
    plain = probe.encode("hello world", add_special_tokens=False).ids
    wrapped = probe.encode("hello world", add_special_tokens=True).ids
    if not plain:
        return wrapped, []
    for start in range(len(wrapped) - len(plain) + 1):
        if wrapped[start : start + len(plain)] == plain:
            return wrapped[:start], wrapped[start + len(plain) :]
    return [], []


def _set_byte_level_prefix_space(pre_tokenizer: dict[str, Any] | None) -> None:
    """Make byte-level pre-tokenizers add a prefix space, so a word alone is spelt as it is inside a sentence."""
    if pre_tokenizer is None:
        return
    if pre_tokenizer.get("type") == "ByteLevel":
        pre_tokenizer["add_prefix_space"] = True
    for child in pre_tokenizer.get("pretokenizers", []):
        _set_byte_level_prefix_space(child)


def _merge_pair(merge: str | list[str]) -> tuple[str, str]:
    """A BPE merge as a pair, whichever of the two JSON spellings the tokenizer file uses."""
    if isinstance(merge, str):
        left, right = merge.split(" ", 1)
        return left, right
    return merge[0], merge[1]


def _plan_vocabulary(
    backend: Tokenizer,
    hf_tokenizer: Any,
    words: Sequence[str],
    remove_regex: re.Pattern[str] | None,
    use_subword: bool,
) -> _VocabularyPlan:
    """Build the distilled tokenizer: cleaned original vocabulary first, then the extra words."""
    spec = json.loads(backend.to_str())
    model_json = spec["model"]
    model_type = model_json.get("type")
    if model_type not in _SUPPORTED_MODEL_TYPES:
        raise TokenizerError(
            f"tokenizer model type {model_type!r} is not supported; expected one of {', '.join(_SUPPORTED_MODEL_TYPES)}"
        )
    added = sorted(spec.get("added_tokens") or [], key=lambda entry: entry["id"])
    ordered = _ordered_vocab(model_json)
    in_vocab = set(ordered)
    # Added tokens that live outside the model's own vocabulary still get a row, after the regular tokens.
    for entry in added:
        if entry["content"] not in in_vocab:
            ordered.append(entry["content"])
            in_vocab.add(entry["content"])

    unk = hf_tokenizer.unk_token if isinstance(hf_tokenizer.unk_token, str) else _model_unk(model_json)
    pad = hf_tokenizer.pad_token if isinstance(hf_tokenizer.pad_token, str) else None
    if pad is None and spec.get("padding"):
        pad = spec["padding"].get("pad_token")
    for special in (unk, pad):
        if special is not None and special not in in_vocab:
            ordered.append(special)
            in_vocab.add(special)

    bos_ids, eos_ids = _special_wrapping(backend)
    wrapper_tokens = {backend.id_to_token(i) for i in (*bos_ids, *eos_ids)}
    added_contents = {entry["content"] for entry in added}
    # What model2vec calls the internal vocabulary: added tokens survive only if the model needs them.
    internal = [t for t in ordered if t not in added_contents or t in wrapper_tokens or t in (unk, pad)]

    removed: set[str] = set()
    if remove_regex is not None:
        for token in internal:
            if not remove_regex.match(token):
                continue
            if token == unk and model_type in ("WordPiece", "WordLevel"):
                logger.warning("token_remove_pattern matches the unknown token %r; keeping it, the model needs it", unk)
                continue
            removed.add(token)
    if removed:
        logger.info("Removed %d tokens matching token_remove_pattern", len(removed))
    if unk in removed:
        unk = None
    if pad in removed:
        pad = None
    keep_specials = {t for t in (unk, pad) if t is not None}
    # The new tokenizer has no post-processor, so bos/eos and every other added token go too.
    removed.update(t for t in added_contents if t not in keep_specials)
    kept = [t for t in ordered if t not in removed]
    if not use_subword:
        kept = [t for t in kept if t in keep_specials]

    new_model = copy.deepcopy(model_json)
    new_spec = copy.deepcopy(spec)
    new_spec["model"] = new_model
    new_spec["post_processor"] = None
    _set_byte_level_prefix_space(new_spec.get("pre_tokenizer"))
    new_spec["added_tokens"] = []

    # The preprocessor that decides how the extra words are spelt is the new tokenizer's, before words are added.
    _write_vocab(new_model, kept, model_json, unk, removed)
    preprocessor = Tokenizer.from_str(json.dumps(new_spec))

    seen = set(internal) if use_subword else set(keep_specials)
    single_words: list[str] = []
    multi_words: list[str] = []
    seen_multi: set[str] = set()
    counts = {"duplicate": 0, "empty": 0, "pattern": 0}
    for word in words:
        normalized = preprocessor.normalizer.normalize_str(word) if preprocessor.normalizer else word
        if preprocessor.pre_tokenizer is not None and normalized:
            pieces = [piece for piece, _ in preprocessor.pre_tokenizer.pre_tokenize_str(normalized)]
        else:
            pieces = [normalized] if normalized else []
        if not pieces:
            counts["empty"] += 1
            continue
        if len(pieces) > 1:
            # A phrase cannot be one vocabulary entry of a subword model; an added token matches it whole instead.
            if word in kept:
                kept.remove(word)
            phrase = normalized.strip()
            if phrase in seen_multi:
                counts["duplicate"] += 1
                continue
            seen_multi.add(phrase)
            multi_words.append(phrase)
            continue
        token = pieces[0]
        if token in seen:
            counts["duplicate"] += 1
            continue
        if remove_regex is not None and remove_regex.match(token):
            counts["pattern"] += 1
            continue
        seen.add(token)
        single_words.append(token)
    if single_words and model_type == "BPE":
        raise InvalidArgumentError(
            f"vocabulary: adding whole words such as {single_words[0]!r} to a BPE tokenizer is not supported "
            "(it would need new merge rules); use a WordPiece, WordLevel or Unigram model"
        )
    skipped = counts["duplicate"] + counts["empty"] + counts["pattern"]
    if skipped:
        logger.warning(
            "vocabulary: skipped %d of %d words (%d already in the vocabulary or repeated, %d empty after "
            "normalization, %d matching token_remove_pattern)",
            skipped,
            len(words),
            counts["duplicate"],
            counts["empty"],
            counts["pattern"],
        )

    tokens = kept + single_words + multi_words
    _write_vocab(new_model, tokens, model_json, unk, removed)
    ids = {token: index for index, token in enumerate(tokens)}
    original_added = {entry["content"]: entry for entry in added}
    added_entries = []
    for special in sorted(keep_specials, key=ids.__getitem__):
        entry = dict(original_added.get(special, {}))
        entry.update({"id": ids[special], "content": special, "special": True})
        for flag in ("single_word", "lstrip", "rstrip", "normalized"):
            entry.setdefault(flag, False)
        added_entries.append(entry)
    for phrase in multi_words:
        # model2vec's phrase tokens: normalized, not special, and tolerant of surrounding spaces.
        added_entries.append(
            {
                "id": ids[phrase],
                "content": phrase,
                "single_word": False,
                "lstrip": True,
                "rstrip": True,
                "normalized": True,
                "special": False,
            }
        )
    new_spec["added_tokens"] = added_entries
    new_spec["padding"] = None
    new_spec["truncation"] = {
        "direction": "Right",
        "max_length": DEFAULT_MAX_LENGTH,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    tokenizer = Tokenizer.from_str(json.dumps(new_spec))
    if pad is not None:
        # Keep the pad token known to the tokenizer without ever padding (a fixed length of 0 is a no-op).
        tokenizer.enable_padding(pad_id=ids[pad], pad_token=pad, pad_type_id=0, length=0)
    return _VocabularyPlan(tokenizer, tokens)


def _model_unk(model_json: dict[str, Any]) -> str | None:
    """The unknown token as the tokenizer model itself declares it."""
    if model_json["type"] == "Unigram":
        unk_id = model_json.get("unk_id")
        return model_json["vocab"][unk_id][0] if unk_id is not None else None
    return model_json.get("unk_token")


def _write_vocab(
    new_model: dict[str, Any], tokens: list[str], old_model: dict[str, Any], unk: str | None, removed: set[str]
) -> None:
    """Store ``tokens`` (id order) as the vocabulary of the tokenizer model ``new_model``, in place."""
    model_type = old_model["type"]
    if model_type == "Unigram":
        scores = {entry[0]: entry[1] for entry in old_model["vocab"]}
        # New words get the lowest score of the original model, so they never beat an original piece.
        floor = min(scores.values(), default=-100.0)
        new_model["vocab"] = [[token, scores.get(token, floor)] for token in tokens]
        new_model["unk_id"] = tokens.index(unk) if unk is not None and unk in tokens else None
        return
    new_model["vocab"] = {token: index for index, token in enumerate(tokens)}
    if model_type == "BPE":
        # A merge that uses or produces a removed token can no longer fire.
        kept_merges = []
        for merge in old_model.get("merges", []):
            left, right = _merge_pair(merge)
            if left in removed or right in removed or left + right in removed:
                continue
            kept_merges.append(merge)
        new_model["merges"] = kept_merges
        new_model["unk_token"] = unk
    elif unk is not None:
        new_model["unk_token"] = unk


# ------------------------------------------------------------------------------------------------ forward pass


def _model_inputs(backend: Tokenizer, tokens: Sequence[str]) -> list[list[int]]:
    """The input ids that represent each token: its own id between bos and eos, or the encoding of a new word."""
    bos, eos = _special_wrapping(backend)
    vocab = backend.get_vocab(with_added_tokens=True)
    encoder = Tokenizer.from_str(backend.to_str())
    # A tokenizer file may pad to a fixed length (all-MiniLM-L6-v2 pads to 128); a word must be encoded alone,
    # or its mean would be diluted by pad states. (model2vec 0.10 keeps that padding: we deliberately do not.)
    encoder.no_padding()
    encoder.no_truncation()
    inputs: list[list[int]] = []
    for token in tokens:
        token_id = vocab.get(token)
        if token_id is not None:
            inputs.append([*bos, token_id, *eos])
        else:
            inputs.append(encoder.encode(token, add_special_tokens=True).ids)
    return inputs


def _mean_pooled_embeddings(
    model: torch.nn.Module,
    inputs: list[list[int]],
    device: str,
    pad_token_id: int,
    batch_size: int,
    show_progress_bar: bool,
) -> np.ndarray:
    """Run every input through the model and mean-pool its last hidden states; rows follow ``inputs``."""
    model = model.to(device).eval()
    accepts_token_types = "token_type_ids" in inspect.signature(model.forward).parameters
    lengths = np.fromiter((len(ids) for ids in inputs), dtype=np.int64, count=len(inputs))
    # Sorting by length makes each batch nearly pad-free; the vocabulary's own tokens all share one length.
    order = np.argsort(lengths, kind="stable")
    out: np.ndarray | None = None
    with (
        torch.inference_mode(),
        tqdm(total=len(inputs), desc="Encoding tokens", unit=" tokens", disable=not show_progress_bar) as bar,
    ):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
            for slot, row in enumerate(rows):
                input_ids[slot, : lengths[row]] = torch.as_tensor(inputs[row], dtype=torch.long)
            attention_mask = (torch.arange(width)[None, :] < torch.as_tensor(lengths[rows])[:, None]).long()
            features = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
            if accepts_token_types:
                features["token_type_ids"] = torch.zeros_like(features["input_ids"])
            hidden = model(**features).last_hidden_state.float()
            mask = features["attention_mask"].to(hidden.dtype)
            pooled = (hidden * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp_min(1.0)
            if out is None:
                out = np.empty((len(inputs), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled.cpu().numpy()
            bar.update(len(rows))
    assert out is not None  # inputs is never empty: the caller checked there is a token to embed
    # A token whose forward pass overflowed must not poison PCA for every other row.
    return np.nan_to_num(out)


# -------------------------------------------------------------------------------------------- post-processing


def _apply_pca(embeddings: np.ndarray, pca_dims: float | str | None) -> np.ndarray:
    """Centre and rotate onto principal axes (no whitening), keeping the components ``pca_dims`` asks for."""
    if pca_dims is None:
        return embeddings
    n_rows, n_features = embeddings.shape
    if pca_dims == "auto":
        pca_dims = n_features
    if isinstance(pca_dims, int) and pca_dims > n_features:
        logger.warning(
            "pca_dims=%d exceeds the hidden size %d: rotating with PCA without reducing dimensions "
            "(pass pca_dims=None to skip PCA)",
            pca_dims,
            n_features,
        )
        pca_dims = n_features
    if (isinstance(pca_dims, int) and pca_dims >= n_rows) or n_rows < 2:
        logger.warning("pca_dims=%s is not below the number of tokens (%d): PCA is skipped", pca_dims, n_rows)
        return embeddings

    centred = embeddings - embeddings.mean(axis=0)
    covariance = centred.T @ centred / (n_rows - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    # eigh sorts ascending; principal components come largest first.
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    eigenvectors = eigenvectors[:, ::-1]
    if isinstance(pca_dims, float):
        explained = np.cumsum(eigenvalues) / eigenvalues.sum()
        n_components = min(int(np.searchsorted(explained, pca_dims)) + 1, n_features)
    else:
        n_components = int(pca_dims)
    scores = centred @ eigenvectors[:, :n_components]
    # An eigenvector's sign is arbitrary; pin it so the largest-magnitude score of each component is positive.
    peak = np.abs(scores).argmax(axis=0)
    signs = np.sign(scores[peak, np.arange(n_components)])
    signs[signs == 0] = 1.0
    return scores * signs


def _sif_weights(n_rows: int, sif_coefficient: float | None) -> np.ndarray:
    """SIF weight per row: rarer tokens (higher ids, by a Zipf prior on rank) keep more of their vector."""
    if sif_coefficient is None:
        return np.ones(n_rows)
    inverse_rank = 1.0 / np.arange(2, n_rows + 2)
    probability = inverse_rank / inverse_rank.sum()
    return sif_coefficient / (sif_coefficient + probability)


def _quantize(table: np.ndarray, quantize_to: str) -> np.ndarray:
    """Round the table to ``quantize_to`` precision, returning the rounded values."""
    if quantize_to == "int8":
        scale = np.abs(table).max() / 127.0
        if scale == 0:
            return np.zeros_like(table, dtype=np.int8)
        # model2vec divides in half precision before rounding; doing the same keeps ties rounding alike.
        scaled = (table.astype(np.float16) / scale).astype(np.float16)
        return np.clip(np.rint(scaled), -127, 127).astype(np.int8)
    return table.astype(np.dtype(quantize_to))
