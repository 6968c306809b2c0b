"""DenoisingAutoEncoderDataset: (noisy sentence, sentence) pairs for TSDAE training."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from embedforge.sentence_transformer.readers.input_example import InputExample


class DenoisingAutoEncoderDataset(Dataset):
    """Item ``i`` is ``InputExample(texts=[noise_fn(sentences[i]), sentences[i]])``, for DenoisingAutoEncoderLoss.

    The default noise deletes words (see :meth:`delete`), which needs ``nltk`` and its ``punkt``
    tokenizer data; a custom ``noise_fn`` needs neither.
    """

    def __init__(self, sentences: Sequence[str], noise_fn: Callable[[str], str] | None = None) -> None:
        self.sentences = sentences
        self.noise_fn = noise_fn if noise_fn is not None else DenoisingAutoEncoderDataset.delete

    def __getitem__(self, item: int) -> InputExample:
        sentence = self.sentences[item]
        return InputExample(texts=[self.noise_fn(sentence), sentence])

    def __len__(self) -> int:
        return len(self.sentences)

    @staticmethod
    def delete(text: str, del_ratio: float = 0.6) -> str:
        """Drop each word with probability ``del_ratio`` (numpy's global generator), keeping at least one."""
        try:
            from nltk import word_tokenize
            from nltk.tokenize.treebank import TreebankWordDetokenizer
        except ImportError as error:
            raise ImportError(
                "DenoisingAutoEncoderDataset's default noise (delete) needs nltk: pip install nltk, "
                "or pass your own noise_fn"
            ) from error
        words = word_tokenize(text)
        if not words:
            return text
        keep = np.random.rand(len(words)) > del_ratio
        if not keep.any():
            keep[np.random.choice(len(words))] = True
        return TreebankWordDetokenizer().detokenize(np.array(words)[keep])
