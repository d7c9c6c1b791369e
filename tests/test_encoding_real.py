"""Real UTS03 responses (200 PCs) against a real design from each row's ``tr_text``: the fast
path picks himalaya RidgeCV's alphas and gives its CV scores."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.encoding.backend import use_backend
from gim_brain.encoding.cv import story_folds
from gim_brain.encoding.fastpath import ridge_cv_fastpath
from gim_brain.encoding.ridge import fit_ridge

from _encoding_helpers import _one_blas_thread  # noqa: F401

STORIES = ["adollshouse", "alternateithicatom", "avatar", "buck", "eyespy", "hangtime"]


def _word_count_design(tr_text, delays=(1, 2, 3, 4)):
    counts = np.array([[len(t.split()), sum(len(w) for w in t.split())] for t in map(str, tr_text)],
                      dtype=np.float64)
    cols = []
    for d in delays:
        shifted = np.zeros_like(counts)
        shifted[d:] = counts[:-d]
        cols.append(shifted)
    D = np.concatenate(cols, axis=1)
    return ((D - D.mean(0)) / np.where(D.std(0) > 0, D.std(0), 1)).astype(np.float32)


@pytest.mark.shared_data
def test_fastpath_agrees_with_ridgecv_on_uts03(lebel_root):
    Xs, Ys, rows = [], [], {}
    for story in STORIES:
        path = lebel_root / "responses" / "UTS03" / f"{story}.npz"
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        with np.load(path, allow_pickle=False) as d:
            Xs.append(_word_count_design(d["tr_text"]))
            Ys.append(d["responses"].astype(np.float32))
        rows[story] = Ys[-1].shape[0]
    X, Y = np.concatenate(Xs), np.concatenate(Ys)
    folds = story_folds(rows, 3)
    alphas = np.logspace(0, 8, 17)
    with use_backend("torch"):
        fast = ridge_cv_fastpath(X, Ys, folds, alphas)
        ref = fit_ridge(X, Y, folds, alphas, solver="ridge")
    assert np.mean(np.isclose(fast.best_alphas, ref.best_alphas, rtol=1e-4)) >= 0.99
    assert np.max(np.abs(fast.cv_scores - ref.cv_scores)) < 1e-4
