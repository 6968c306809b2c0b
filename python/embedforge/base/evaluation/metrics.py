"""Ranking and classification metrics that the evaluators of every model kind compute, written out in numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedforge.base.evaluation.evaluator import check_same_length


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision over the distinct score thresholds (sklearn's ``average_precision_score``)."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores = scores[order]
    sorted_labels = labels[order].astype(np.float64)
    # The last index of each run of tied scores is one threshold.
    cut = np.r_[np.where(np.diff(sorted_scores))[0], sorted_labels.size - 1]
    tps = np.cumsum(sorted_labels)[cut]
    fps = 1 + cut - tps
    if tps[-1] == 0:
        return 0.0
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def matthews_corrcoef(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation of two 0/1 vectors, 0.0 when either is constant (as sklearn)."""
    truth = labels.astype(np.int64)
    guess = predicted.astype(np.int64)
    n = truth.size
    true_counts = np.bincount(truth, minlength=2).astype(np.float64)
    pred_counts = np.bincount(guess, minlength=2).astype(np.float64)
    correct = float(np.sum(truth == guess))
    cov_tp = correct * n - float(true_counts @ pred_counts)
    cov_pp = n * n - float(pred_counts @ pred_counts)
    cov_tt = n * n - float(true_counts @ true_counts)
    if cov_pp * cov_tt == 0:
        return 0.0
    return cov_tp / np.sqrt(cov_tt * cov_pp)


def ndcg_at_k(relevant: np.ndarray, scores: np.ndarray, k: int) -> float:
    """NDCG@k of one ranking with tied scores averaged (sklearn's ``ndcg_score`` for one sample)."""
    discount = 1.0 / np.log2(np.arange(relevant.size) + 2)
    discount[k:] = 0.0
    discount_cumsum = np.cumsum(discount)
    # Documents with equal scores share the mean gain of their group over the group's positions.
    _, group_of, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    gains = np.zeros(counts.size)
    np.add.at(gains, group_of, relevant)
    gains /= counts
    group_end = np.cumsum(counts) - 1
    group_discount = np.diff(discount_cumsum[group_end], prepend=0.0)
    dcg = float((gains * group_discount).sum())
    ideal = float((np.sort(relevant)[::-1] * discount).sum())
    return dcg / ideal if ideal > 0 else 0.0


def best_accuracy_threshold(scores: Any, labels: Any, high_score_more_similar: bool) -> tuple[float, float]:
    """Best accuracy over all cut points between distinct scores, and the threshold achieving it."""
    check_same_length(scores=scores, labels=labels)
    labels = np.asarray(labels)
    score_dtype = np.result_type(np.asarray(scores).dtype, np.float16)
    rows = sorted(zip(scores, labels), key=lambda row: row[0], reverse=high_score_more_similar)
    best_acc: float = 0
    best_threshold: Any = -1
    positives_above = 0
    negatives_below = int(np.sum(labels == 0))
    if rows:
        # Cutting before the first row labels every pair dissimilar.
        best_acc = negatives_below / len(labels)
        best_threshold = np.nextafter(rows[0][0], np.inf if high_score_more_similar else -np.inf, dtype=score_dtype)
    for i, (score, label) in enumerate(rows):
        if label == 1:
            positives_above += 1
        else:
            negatives_below -= 1
        is_last = i == len(rows) - 1
        # Tied scores cannot be separated: only cut after the whole run.
        if not is_last and score == rows[i + 1][0]:
            continue
        acc = (positives_above + negatives_below) / len(labels)
        if acc > best_acc:
            best_acc = acc
            best_threshold = score if is_last else (score + rows[i + 1][0]) / 2
            # Rounding can land the midpoint on the next score, which would then be misclassified.
            if not is_last and best_threshold == rows[i + 1][0]:
                best_threshold = score
    return best_acc, best_threshold


def best_f1_threshold(scores: Any, labels: Any, high_score_more_similar: bool) -> tuple[float, float, float, float]:
    """Best F1 (with its precision and recall) over all cut points, and the threshold achieving it."""
    check_same_length(scores=scores, labels=labels)
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    rows = sorted(zip(scores, labels), key=lambda row: row[0], reverse=high_score_more_similar)
    best_f1: float = 0
    best_precision: float = 0
    best_recall: float = 0
    threshold: Any = 0
    extracted = 0
    correct = 0
    total_positives = np.sum(labels)
    for i, (score, label) in enumerate(rows):
        extracted += 1
        if label == 1:
            correct += 1
        is_last = i == len(rows) - 1
        if not is_last and score == rows[i + 1][0]:
            continue
        if correct > 0:
            precision = correct / extracted
            recall = correct / total_positives
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1, best_precision, best_recall = f1, precision, recall
                threshold = score if is_last else (score + rows[i + 1][0]) / 2
                if not is_last and threshold == rows[i + 1][0]:
                    threshold = score
    return best_f1, best_precision, best_recall, threshold


__all__ = [
    "average_precision",
    "best_accuracy_threshold",
    "best_f1_threshold",
    "matthews_corrcoef",
    "ndcg_at_k",
]
