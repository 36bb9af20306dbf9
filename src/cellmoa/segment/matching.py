"""Object-level scores of a segmentation against a ground truth: IoU matching, F1.

A true and a predicted object match when their intersection over union (IoU) is at least a
threshold (0.5 by default), one to one. Pairs are taken greedily from the highest IoU; at a
threshold of 0.5 or more this is the optimal (Hungarian) matching, since an object can then
overlap only one other by more than half of their union.
"""

from __future__ import annotations

import numpy as np


def iou_pairs(truth: np.ndarray, predicted: np.ndarray):
    """The IoU of every overlapping pair of a true and a predicted object.

    Parameters
    ----------
    truth, predicted : numpy.ndarray
        Integer label images of one shape (0 the background).

    Returns
    -------
    tuple of numpy.ndarray
        ``(true_label, predicted_label, iou)``, one entry per overlapping pair.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 0]])
    >>> b = np.array([[0, 2, 2, 0]])
    >>> iou_pairs(a, b)
    (array([1]), array([2]), array([0.33333333]))
    """
    t, p = truth.ravel().astype(np.int64), predicted.ravel().astype(np.int64)
    both = (t > 0) & (p > 0)
    pairs, inter = np.unique(np.stack([t[both], p[both]]), axis=1, return_counts=True)
    area_t, area_p = np.bincount(t), np.bincount(p)
    union = area_t[pairs[0]] + area_p[pairs[1]] - inter
    return pairs[0], pairs[1], inter / union


def match_objects(truth: np.ndarray, predicted: np.ndarray, iou: float = 0.5) -> dict:
    """Match predicted objects to true ones one to one at IoU >= ``iou``; precision, recall, F1.

    Parameters
    ----------
    truth, predicted : numpy.ndarray
        Integer label images of one shape (0 the background; labels need not be consecutive).
    iou : float
        The least IoU of a match.

    Returns
    -------
    dict
        ``n_true``, ``n_predicted``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``
        (0 where undefined) and ``mean_iou`` (of the matches; NaN without one).

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2, 2, 3]])
    >>> predicted = np.array([[5, 5, 0, 7, 0, 0, 0]])
    >>> s = match_objects(truth, predicted)
    >>> s["tp"], s["fp"], s["fn"], round(s["f1"], 3)
    (1, 1, 2, 0.4)
    """
    true_ids, pred_ids, ious = iou_pairs(truth, predicted)
    order = np.argsort(-ious, kind="stable")
    used_t: set = set()
    used_p: set = set()
    matched = []
    for k in order:
        if ious[k] < iou:
            break
        if true_ids[k] in used_t or pred_ids[k] in used_p:
            continue
        used_t.add(true_ids[k])
        used_p.add(pred_ids[k])
        matched.append(float(ious[k]))
    n_true = int(np.count_nonzero(np.unique(truth)))
    n_pred = int(np.count_nonzero(np.unique(predicted)))
    tp = len(matched)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_true + n_pred) if n_true + n_pred else 0.0
    return {
        "n_true": n_true,
        "n_predicted": n_pred,
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_true - tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_iou": float(np.mean(matched)) if matched else float("nan"),
    }
