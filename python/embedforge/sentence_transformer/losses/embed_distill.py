"""EmbedDistillLoss: pull the student's embeddings towards pre-computed teacher embeddings."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError

DISTANCE_METRICS = ("mse", "l2", "cosine")


class EmbedDistillLoss(Loss):
    """Distance between each text column's student embedding and the teacher embedding given as the label.

    ``distance_metric`` is ``"cosine"`` (mean of 1 - cosine similarity), ``"l2"`` (mean Euclidean
    distance) or ``"mse"`` (mean squared error over all elements); the per-column losses are averaged.
    The label holds the teacher embeddings: shape ``(batch, teacher_dim)``, used for every column, or
    ``(batch, columns, teacher_dim)``, one per column. With ``projection_dim`` a trainable
    ``nn.Linear(student_dim, projection_dim)`` on the loss maps student embeddings into the teacher's space.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (1, None)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = """
@article{kim2023embeddistill,
    title={EmbedDistill: A Geometric Knowledge Distillation for Information Retrieval},
    author={Seungyeon Kim and Ankit Singh Rawat and Manzil Zaheer and Sadeep Jayasumana and Veeranjaneyulu Sadhanala and Wittawat Jitkrittum and Aditya Krishna Menon and Rob Fergus and Sanjiv Kumar},
    year={2023},
    eprint={2301.12005},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Literal["mse", "l2", "cosine"] = "cosine",
        projection_dim: int | None = None,
    ) -> None:
        super().__init__()
        if distance_metric not in DISTANCE_METRICS:
            raise InvalidArgumentError(
                f"distance_metric must be one of {list(DISTANCE_METRICS)}, but got {distance_metric!r}"
            )
        if projection_dim is not None and (not isinstance(projection_dim, int) or projection_dim <= 0):
            raise InvalidArgumentError(f"projection_dim must be a positive integer or None, but got {projection_dim!r}")
        self.model = model
        self.distance_metric = distance_metric
        self.projection_dim = projection_dim
        self.projection: nn.Linear | None = None
        if projection_dim is not None:
            self.projection = nn.Linear(_student_dim(model), projection_dim, device=_device_of(model))

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        """Mean over text columns of the distance between student and teacher embeddings."""
        if labels is None:
            raise InvalidArgumentError(
                f"{type(self).__name__} requires pre-computed teacher embeddings as labels: embed the texts once "
                "with the teacher and add them as a label column (e.g. with `dataset.map(...)`)."
            )
        features = self.check_features(sentence_features, labels)
        embeddings = embed_columns(self.model, features)
        targets = labels.detach()
        if targets.dim() == 2:
            # One teacher embedding per row, shared by every column (e.g. a sentence and its translations).
            teacher_embeddings = [targets] * len(embeddings)
        elif targets.dim() == 3:
            if targets.size(1) != len(embeddings):
                raise InvalidArgumentError(
                    f"Number of label columns ({targets.size(1)}) does not match number of input text columns "
                    f"({len(embeddings)}): {type(self).__name__} got labels of shape {tuple(targets.shape)}. "
                    "Pass labels of shape "
                    f"(batch_size, {len(embeddings)}, teacher_dim), or (batch_size, teacher_dim) to use one "
                    "teacher embedding for every column."
                )
            teacher_embeddings = list(targets.unbind(dim=1))
        else:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs labels of shape (batch_size, teacher_dim) or "
                f"(batch_size, num_columns, teacher_dim), but got a {targets.dim()}-D tensor of shape "
                f"{tuple(targets.shape)}"
            )
        return self.compute_loss_from_embeddings(embeddings, teacher_embeddings)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], teacher_embeddings: list[Tensor]) -> Tensor:
        """The loss from student embeddings and matching teacher embeddings (one tensor per column each)."""
        per_column = []
        for student, teacher in zip(embeddings, teacher_embeddings, strict=True):
            teacher = teacher.to(device=student.device, dtype=student.dtype)
            if self.projection is not None:
                student = self.projection(student)
            if student.shape != teacher.shape:
                raise InvalidArgumentError(
                    f"{type(self).__name__}: student embeddings have shape {tuple(student.shape)} but teacher "
                    f"embeddings {tuple(teacher.shape)}; set projection_dim={teacher.shape[-1]} when the "
                    "dimensions differ"
                )
            if self.distance_metric == "mse":
                per_column.append(nn.functional.mse_loss(student, teacher))
            elif self.distance_metric == "l2":
                per_column.append(torch.linalg.vector_norm(student - teacher, dim=-1).mean())
            else:
                per_column.append((1 - nn.functional.cosine_similarity(student, teacher, dim=-1)).mean())
        return torch.stack(per_column).mean()

    def save_projection(self, path: str | os.PathLike[str]) -> None:
        """Write the projection layer to a safetensors file (the trainer saves only the model)."""
        if self.projection is None:
            raise InvalidArgumentError(
                f"No projection layer to save: construct {type(self).__name__} with projection_dim=<int> for a "
                "learnable projection"
            )
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in self.projection.state_dict().items()}
        save_file(state, str(path), metadata={"format": "pt"})

    def load_projection(self, path: str | os.PathLike[str]) -> None:
        """Load a projection written by :meth:`save_projection`, creating the layer if there is none yet."""
        state = load_file(str(path))
        if "weight" not in state or state["weight"].ndim != 2:
            raise InvalidArgumentError(f"{os.fspath(path)!r} holds no projection weight of shape (out, in)")
        out_features, in_features = state["weight"].shape
        if self.projection is None:
            student_dim = _student_dim(self.model)
            if in_features != student_dim:
                raise InvalidArgumentError(
                    f"The projection in {os.fspath(path)!r} takes {in_features}-dim embeddings, but the student "
                    f"model produces {student_dim}-dim embeddings"
                )
            self.projection = nn.Linear(in_features, out_features, device=_device_of(self.model))
            self.projection_dim = out_features
        elif (self.projection.in_features, self.projection.out_features) != (in_features, out_features):
            raise InvalidArgumentError(
                f"The projection in {os.fspath(path)!r} maps {in_features} -> {out_features}, which does not match "
                f"the configured projection ({self.projection.in_features} -> {self.projection.out_features})"
            )
        self.projection.load_state_dict(state)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"distance_metric": self.distance_metric, "projection_dim": self.projection_dim}


def _student_dim(model: nn.Module) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
    width = getter() if callable(getter) else None
    if not isinstance(width, int):
        raise InvalidArgumentError("projection_dim needs a model that reports its embedding dimension")
    return width


def _device_of(model: nn.Module) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")
