"""A small WordPiece tokenizer built at run time from the demo texts (no tokenizer file ships in the package)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

#: BERT's special tokens, so the tokenizer looks like the ones users know.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_wordpiece_tokenizer(texts: Iterable[str]) -> Tokenizer:
    """A lower-casing BERT-style WordPiece tokenizer whose vocabulary is every word of ``texts``.

    Words outside the vocabulary fall back to single-character pieces. The vocabulary is built
    directly (sorted) rather than with ``tokenizers``' trainer, whose tie-breaking varies between
    runs: the same texts must always give the same token ids, so that a seeded run is repeatable.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: set[str] = set()
    for text in texts:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({character for word in words for character in word})
    pieces = [*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters), *sorted(words - set(characters))]
    tokenizer = Tokenizer(models.WordPiece({piece: index for index, piece in enumerate(pieces)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    return tokenizer
