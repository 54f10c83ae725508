"""Multi-class comparison: one classifier that sorts showers into the reference and several
generated samples at once (a caloforge option; the official script compares one sample at a
time).

Each of the K + 1 samples (the reference first) gives the same number of showers n, its rows
of the official high-level vector (or any (n, D) input) with its class index. The merged sample
is shuffled and split 60/20/20 into train, validation and test; inputs are PCA-whitened on the
training part (as the ``fast`` binary protocol); a softmax DNN (3 x 128 LeakyReLU units, Adam
3e-3, batch 256, at most ``max_epochs`` epochs, the best by validation accuracy, early stop
after 10 without improvement) is trained with cross-entropy. On the test part it reports

* the confusion matrix, rows = true sample, columns = predicted, each row summing to 1;
* per generated sample k, the AUC of p_k / (p_k + p_ref) between the test rows of sample k and
  of the reference: 0.5 within ``auc_null_sigma`` for a sample the classifier cannot tell from
  the reference;
* the overall accuracy (1 / (K + 1) for K + 1 indistinguishable samples).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from caloforge.errors import ConfigError
from caloforge.evaluate.classifier import _standardise, roc_auc


@dataclass(frozen=True)
class MulticlassResult:
    """Outcome of :func:`multiclass_test` (see the module docstring)."""

    labels: list[str]
    confusion: list[list[float]]
    auc_vs_reference: dict[str, float]
    auc_null_sigma: float
    accuracy: float
    n_per_class: int
    best_epoch: int

    def to_dict(self) -> dict:
        return asdict(self)


def multiclass_test(
    reference: np.ndarray,
    generated: Sequence[np.ndarray],
    *,
    labels: Sequence[str] | None = None,
    seed: int = 0,
    hidden_units: int = 128,
    max_epochs: int = 50,
    patience: int = 10,
) -> MulticlassResult:
    """Train one classifier on the reference and every generated sample (each (n_k, D)); the
    larger samples are randomly cut to the smallest n (seeded)."""
    import torch

    samples = [np.asarray(reference, dtype=np.float64)] + [
        np.asarray(g, dtype=np.float64) for g in generated
    ]
    if len(samples) < 3:
        raise ConfigError("the multi-class comparison needs at least two generated samples")
    names = ["reference", *(labels or [f"generated_{k}" for k in range(1, len(samples))])]
    if len(names) != len(samples):
        raise ConfigError(f"{len(samples) - 1} generated samples but {len(names) - 1} labels")
    if any(s.ndim != 2 or s.shape[1] != samples[0].shape[1] for s in samples):
        raise ConfigError("every sample must be an (N, D) array with the same D")
    if any(not np.all(np.isfinite(s)) for s in samples):
        raise ConfigError("classifier inputs contain NaN or Inf")
    n = min(len(s) for s in samples)
    if n < 10:
        raise ConfigError(
            f"the multi-class comparison needs at least 10 showers per sample, got {n}"
        )
    rng = np.random.default_rng(seed)
    x = np.concatenate([s[np.sort(rng.choice(len(s), n, replace=False))] for s in samples])
    y = np.repeat(np.arange(len(samples)), n)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
    parts = np.split(np.arange(len(x)), [n_train, n_train + n_val])
    x = _standardise(x, parts[0])
    tx = [torch.from_numpy(np.ascontiguousarray(x[p])) for p in parts]
    ty = [torch.from_numpy(y[p]) for p in parts]

    torch.manual_seed(seed)
    gen_torch = torch.Generator().manual_seed(seed)
    layers: list[torch.nn.Module] = []
    width = x.shape[1]
    for _ in range(3):
        layers += [torch.nn.Linear(width, hidden_units), torch.nn.LeakyReLU()]
        width = hidden_units
    layers.append(torch.nn.Linear(width, len(samples)))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        net.eval()
        with torch.no_grad():
            return torch.softmax(net(inputs), dim=1)

    best_acc, best_epoch, best_state, stale = -1.0, 0, None, 0
    for epoch in range(1, max_epochs + 1):
        net.train()
        perm = torch.randperm(len(tx[0]), generator=gen_torch)
        for start in range(0, len(perm), 256):
            idx = perm[start : start + 256]
            opt.zero_grad()
            loss_fn(net(tx[0][idx]), ty[0][idx]).backward()
            opt.step()
        acc = float((predict(tx[1]).argmax(1) == ty[1]).float().mean())
        if acc > best_acc:
            best_acc, best_epoch, stale = acc, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if stale >= patience:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    prob = predict(tx[2]).numpy().astype(np.float64)
    y_test = ty[2].numpy()
    pred = prob.argmax(1)
    k = len(samples)
    confusion = np.zeros((k, k))
    for true_class in range(k):
        rows = y_test == true_class
        confusion[true_class] = np.bincount(pred[rows], minlength=k) / max(int(rows.sum()), 1)
    aucs, sigmas = {}, []
    for c in range(1, k):
        rows = (y_test == 0) | (y_test == c)
        score = prob[rows, c] / (prob[rows, c] + prob[rows, 0] + 1e-300)
        labels_c = (y_test[rows] == c).astype(float)
        aucs[names[c]] = roc_auc(labels_c, score)
        n1, n0 = int(labels_c.sum()), int(len(labels_c) - labels_c.sum())
        sigmas.append(math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)))
    return MulticlassResult(
        labels=names,
        confusion=confusion.tolist(),
        auc_vs_reference=aucs,
        auc_null_sigma=max(sigmas),
        accuracy=float(np.mean(pred == y_test)),
        n_per_class=n,
        best_epoch=best_epoch,
    )
