"""DenoisingAutoEncoderLoss (TSDAE): a decoder must rebuild the original text from the damaged text's embedding."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from torch import Tensor, nn

from embedforge._internal.local_path import require_local_dir
from embedforge.base.losses.base import Loss
from embedforge.exceptions import InvalidArgumentError, ModelFormatError
from embedforge.sentence_transformer.modules.static_embedding import StaticEmbedding

logger = logging.getLogger(__name__)


def _tie_encoder_decoder_weights(encoder: nn.Module, decoder: nn.Module) -> None:
    """Make every encoder parameter that has a same-named decoder parameter *be* that decoder parameter.

    The decoder's values win (they become the shared starting point). Parameters only the decoder
    has, such as cross-attention, have no encoder counterpart and stay the decoder's own.
    """
    encoder_modules = dict(encoder.named_modules())
    tied = 0
    for name, parameter in decoder.named_parameters():
        module_name, _, attribute = name.rpartition(".")
        owner = encoder_modules.get(module_name)
        if owner is not None and hasattr(owner, attribute):
            setattr(owner, attribute, parameter)
            tied += 1
    if not tied:
        logger.warning("No encoder weights were tied to the decoder; are they the same architecture?")


class DenoisingAutoEncoderLoss(Loss):
    """TSDAE: encode the damaged text, then decode the original text from that single embedding.

    Columns: (damaged text, original text), no label. The decoder is a causal-LM version of a local
    transformer folder (``decoder_name_or_path``; with ``tie_encoder_decoder=True`` the encoder's own
    folder) with cross-attention added; it attends only to the sentence embedding. The loss is the
    token-level cross-entropy of predicting each next token of the original text, ignoring padding.
    With ``tie_encoder_decoder`` the encoder and decoder share every parameter they have in common.
    Models are only read from local folders; nothing is downloaded.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = False
    citation: ClassVar[str] = """
@inproceedings{wang2021tsdae,
    title = "{TSDAE}: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised Sentence Embedding Learning",
    author = "Wang, Kexin and Reimers, Nils and Gurevych, Iryna",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2021",
    month = nov,
    year = "2021",
    address = "Punta Cana, Dominican Republic",
    publisher = "Association for Computational Linguistics",
    pages = "671--688",
    url = "https://arxiv.org/abs/2104.06979",
}
"""

    def __init__(
        self, model: nn.Module, decoder_name_or_path: str | None = None, tie_encoder_decoder: bool = True
    ) -> None:
        super().__init__()
        first = model[0] if isinstance(model, nn.Sequential) else None
        if isinstance(first, StaticEmbedding):
            raise InvalidArgumentError(
                "DenoisingAutoEncoderLoss is not compatible with a SentenceTransformer model based on a StaticEmbedding"
            )
        auto_model = getattr(first, "auto_model", None)
        if not isinstance(auto_model, nn.Module):
            raise InvalidArgumentError(
                "DenoisingAutoEncoderLoss needs a model whose first module is a Transformer, "
                f"but the first module is {type(first).__name__}"
            )
        if decoder_name_or_path is None and not tie_encoder_decoder:
            raise InvalidArgumentError("decoder_name_or_path is required when tie_encoder_decoder=False")

        # transformers takes seconds to import: only this loss's users pay for it.
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        self.encoder = model  # trained and kept: the final encoder
        # Typed loosely: transformers models and tokenizers resolve their attributes dynamically.
        encoder_model: Any = auto_model
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None:
            raise InvalidArgumentError("DenoisingAutoEncoderLoss needs a model with a tokenizer, but it has none")
        self.tokenizer_encoder: Any = tokenizer
        encoder_name_or_path: str = encoder_model.config._name_or_path
        if tie_encoder_decoder:
            if decoder_name_or_path:
                logger.warning("When tie_encoder_decoder=True, the decoder_name_or_path will be invalid.")
            decoder_name_or_path = encoder_name_or_path
        assert decoder_name_or_path is not None
        decoder_dir = require_local_dir(decoder_name_or_path, "decoder_name_or_path")

        self.tokenizer_decoder: Any = AutoTokenizer.from_pretrained(decoder_dir, local_files_only=True)
        # Different tokenizer classes may split text differently: targets are then re-tokenised for the decoder.
        self.need_retokenization = not isinstance(self.tokenizer_encoder, type(self.tokenizer_decoder))
        decoder_config = AutoConfig.from_pretrained(decoder_dir, local_files_only=True)
        decoder_config.is_decoder = True
        decoder_config.add_cross_attention = True
        try:
            self.decoder = AutoModelForCausalLM.from_pretrained(
                decoder_dir, config=decoder_config, local_files_only=True
            )
        except ValueError as error:
            raise ModelFormatError(
                f"decoder_name_or_path={decoder_name_or_path!r} cannot be loaded as a decoder; its architecture "
                f"needs a causal language-model head (an XXXLMHeadModel class in transformers): {error}"
            ) from error
        encoder_hidden = encoder_model.config.hidden_size
        if encoder_hidden != decoder_config.hidden_size:
            raise InvalidArgumentError(
                f"The encoder's hidden size ({encoder_hidden}) and the decoder's ({decoder_config.hidden_size}) "
                "must match"
            )
        if self.tokenizer_decoder.pad_token is None:
            # GPT-2 style tokenizers have no pad token; the end-of-sequence token stands in.
            self.tokenizer_decoder.pad_token = self.tokenizer_decoder.eos_token
            self.decoder.config.pad_token_id = self.decoder.config.eos_token_id

        original_encoder_tokenizer = AutoTokenizer.from_pretrained(
            require_local_dir(encoder_name_or_path, "the encoder's model folder"), local_files_only=True
        )
        if len(original_encoder_tokenizer) != len(self.tokenizer_encoder):
            logger.warning(
                "The vocabulary of the encoder has been changed. One might need to change the decoder vocabulary, too."
            )
        if tie_encoder_decoder:
            if self.need_retokenization:
                raise InvalidArgumentError(
                    "tie_encoder_decoder=True needs the encoder and decoder to use the same tokenizer, but got "
                    f"{type(self.tokenizer_encoder).__name__} and {type(self.tokenizer_decoder).__name__}"
                )
            if len(self.tokenizer_encoder) != len(self.tokenizer_decoder):
                # The encoder's vocabulary grew (e.g. added tokens): the tied decoder must use it too.
                self.tokenizer_decoder = self.tokenizer_encoder
                self.decoder.resize_token_embeddings(len(self.tokenizer_decoder))
                logger.warning(
                    "Since the encoder vocabulary has been changed and tie_encoder_decoder=True, the new vocabulary "
                    "is used for the decoder as well."
                )
            decoder_base = self.decoder._modules[self.decoder.base_model_prefix]
            assert decoder_base is not None
            _tie_encoder_decoder_weights(encoder_model, decoder_base)

    def retokenize(self, sentence_features: dict[str, Tensor]) -> dict[str, Tensor]:
        """Decode token ids with the encoder's tokenizer and encode the text again with the decoder's."""
        input_ids = sentence_features["input_ids"]
        texts = self.tokenizer_encoder.batch_decode(
            input_ids, skip_special_tokens=True, clean_up_tokenization_spaces=True
        )
        encoded = self.tokenizer_decoder(
            texts, padding=True, truncation="longest_first", return_tensors="pt", max_length=None
        )
        return encoded.to(input_ids.device)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Cross-entropy of the decoder reconstructing the original text from the damaged text's embedding."""
        source_features, target_features = self.check_features(sentence_features, labels)
        if self.need_retokenization:
            target_features = self.retokenize(target_features)
        embeddings = self.encoder(source_features)["sentence_embedding"]

        target_ids = target_features["input_ids"]
        # Teacher forcing: the decoder sees tokens 0..n-2 and predicts tokens 1..n-1.
        decoder_input_ids = target_ids[:, :-1].clone()
        next_token_ids = target_ids[:, 1:]
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=None,
            # The whole damaged sentence is one "encoder token": its embedding.
            encoder_hidden_states=embeddings[:, None],
            encoder_attention_mask=source_features["attention_mask"][:, 0:1],
            labels=None,
            use_cache=False,
        )
        logits = decoder_outputs[0]
        cross_entropy = nn.CrossEntropyLoss(ignore_index=self.tokenizer_decoder.pad_token_id)
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), next_token_ids.reshape(-1))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's settings, for the model card."""
        return {
            "decoder_name_or_path": self.decoder.config._name_or_path,
            "need_retokenization": self.need_retokenization,
        }
