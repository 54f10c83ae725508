"""The classifier test: a DNN trained to tell generated from reference showers.

Two procedures (:data:`PROTOCOLS`), every report records which:

``calochallenge`` -- the official CaloChallenge procedure (:func:`official_classifier_test`):
generated label 0, reference label 1, each class cut by the official split (fixed counts per
dataset, or 60/20/20 % when the files are smaller) into train / test / validation; a float64
DNN of 3 x 2048 LeakyReLU units, Adam 2e-4, batch 1000, 50 epochs, the best epoch by *test*
accuracy; scikit-learn's isotonic calibration (probabilities in [1e-6, 1 - 1e-6]) fitted on the
test part; reported on the *validation* part: the AUC of the **calibrated** output and
JSD = (ln 2 - BCE) / ln 2 of the calibrated probabilities.

``fast`` -- caloforge's CPU option (:func:`classifier_test`): the merged sample (reference 0,
generated 1) is shuffled and split 60/20/20 into train, validation and test; 3 x 128 units,
Adam 3e-3, batch 256, at most 50 epochs with early stopping after 10 without a better
validation accuracy, inputs standardised on the training part -- whitened (decorrelated by
PCA) when they have at most :data:`WHITEN_MAX_COLUMNS` columns, z-scored column by column
otherwise -- low-level inputs of at most 20 000 showers per sample; the raw output's AUC on the
test part and the JSD of probabilities calibrated on the validation part (kept within
[1 / (2 n_val), 1 - 1 / (2 n_val)]); cheaper FPD/KPD settings (5 batches per FPD size, KPD
batches of 5 000).

Either way a perfect generator gives AUC 0.5 within ``auc_null_sigma`` =
sqrt((n0 + n1 + 1) / (12 n0 n1)) (the spread of the AUC of an uninformative score), and JSD 0
(small negative values are noise).

Input modes (:func:`classifier_inputs`, as the official code builds them; E in MeV):

* ``low``: [log10 E_inc, thresholded voxels / E_inc];
* ``low-normed``: [log10 E_inc, raw voxels / thresholded E_layer, log10(E_layer + 1e-8)];
* ``high``: :meth:`~caloforge.evaluate.features.ShowerFeatures.high_level_vector`;
* ``resnet``: the ``low`` input, for the official ``cls-resnet`` network
  (:mod:`caloforge.evaluate.resnet`; ds2 / ds3, calochallenge protocol only).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import rankdata

from caloforge.errors import ConfigError
from caloforge.evaluate.features import ShowerFeatures
from caloforge.geometry import Geometry

INPUT_MODES = ("low", "low-normed", "high", "resnet")

#: Inputs with at most this many columns are PCA-whitened by protocols that standardise; wider
#: ones (the low-level voxel inputs) are z-scored per column, as a (D, D) eigendecomposition of
#: thousands of columns would cost more than the classifier itself.
WHITEN_MAX_COLUMNS = 1024


@dataclass(frozen=True)
class Protocol:
    """Every setting that changes the classifier and distance numbers.

    Attributes:
        name: ``fast`` or ``calochallenge`` (or a user's label).
        hidden_layers, hidden_units: the DNN's size (LeakyReLU activations).
        learning_rate, batch_size: Adam learning rate and minibatch size.
        max_epochs: training epochs (the best by validation accuracy is kept).
        patience: stop after this many epochs without a better validation accuracy
            (``None``: train all ``max_epochs``).
        standardise: scale the inputs with the training part's statistics: PCA-whitened when
            they have at most :data:`WHITEN_MAX_COLUMNS` columns, z-scored per column otherwise.
            Whitening matters for the high-level vector: its log energies are strongly
            correlated, and a response shift lives in a direction (log E_tot - log E_inc) that
            per-column z-scores leave at a few hundredths of a unit, where the small network
            often fails to find it (a 5 % energy-scale shift of ds1-photons gave AUC 0.52-0.66
            by seed z-scored, 0.86-0.87 whitened; tests/test_evaluate_metrics.py).
        max_classifier_showers: cap on showers per sample loaded for the low-level classifiers
            (a random subset; ``None``: all).
        fpd_min_batch, fpd_max_batch, fpd_n_sizes, fpd_n_batches: FPD batch settings.
        kpd_batch, kpd_n_batches: KPD batch settings.
        distance_seed: seed of the FPD / KPD batch draws (``None``: the run's seed; the
            official code uses 42).

    ``calochallenge`` runs :func:`official_classifier_test`, the official procedure; the
    other protocols run :func:`classifier_test`.
    """

    name: str
    hidden_layers: int
    hidden_units: int
    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int | None
    standardise: bool
    max_classifier_showers: int | None
    fpd_min_batch: int = 10_000
    fpd_max_batch: int = 50_000
    fpd_n_sizes: int = 10
    fpd_n_batches: int = 20
    kpd_batch: int = 10_000
    kpd_n_batches: int = 10
    distance_seed: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


PROTOCOLS = {
    "fast": Protocol(
        "fast", 3, 128, 3e-3, 256, 50, 10, True, 20_000,
        fpd_n_batches=5, kpd_batch=5_000,
    ),
    "calochallenge": Protocol(
        "calochallenge", 3, 2048, 2e-4, 1000, 50, None, False, None, distance_seed=42
    ),
}  # fmt: skip


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name`` (``fast`` or ``calochallenge``), or ``name`` itself."""
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# --------------------------------------------------------------------------- inputs
def classifier_inputs(
    mode: str,
    *,
    features: ShowerFeatures | None = None,
    incident_energies: np.ndarray | None = None,
    showers: np.ndarray | None = None,
    geometry: Geometry | None = None,
    layer_energies: np.ndarray | None = None,
) -> np.ndarray:
    """The (N, D) float64 input of one classifier mode, as the official code builds it.

    ``high``: :meth:`ShowerFeatures.high_level_vector` of ``features``. ``low``: log10 E_inc
    and the thresholded ``showers`` (N, V) / E_inc. ``low-normed``: log10 E_inc, the
    *unthresholded* ``showers`` divided by their layer's thresholded energy
    (``layer_energies`` (N, L), e.g. ``ShowerFeatures.e_layer``) + 1e-16, and
    log10(layer energy + 1e-8) -- the official code normalises raw voxels by the thresholded
    layer sums. Energies in MeV.
    """
    if mode == "high":
        if features is None:
            raise ConfigError("the high-level classifier needs the shower features")
        return features.high_level_vector()
    if mode not in INPUT_MODES:
        raise ConfigError(
            f"unknown classifier input {mode!r}; choose from {', '.join(INPUT_MODES)}"
        )
    if incident_energies is None or showers is None:
        raise ConfigError(f"the {mode!r} classifier needs the voxel energies")
    e_inc = np.asarray(incident_energies).reshape(-1, 1)
    x = np.asarray(showers)
    if mode in ("low", "resnet"):
        return np.concatenate([np.log10(e_inc), x / e_inc], axis=1).astype(np.float64)
    if geometry is None:
        raise ConfigError("the 'low-normed' classifier needs the geometry")
    e_layer = geometry.layer_energies(x) if layer_energies is None else layer_energies
    per_voxel = np.repeat(e_layer, geometry.layer_sizes, axis=1)
    return np.concatenate(
        [np.log10(e_inc), x / (per_voxel + 1e-16), np.log10(e_layer + 1e-8)], axis=1
    ).astype(np.float64)


# --------------------------------------------------------------------------- calibration, AUC
@dataclass(frozen=True)
class IsotonicCalibration:
    """A fitted non-decreasing map from scores to probabilities (pool adjacent violators).

    Attributes:
        thresholds: the distinct fitted scores, increasing, shape (K,).
        values: the calibrated probability at each threshold, non-decreasing, shape (K,).
    Between thresholds the map is linear; outside it is clipped to the end values.
    """

    thresholds: np.ndarray
    values: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.thresholds, self.values)


def isotonic_fit(
    scores: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
) -> IsotonicCalibration:
    """Least-squares non-decreasing fit of ``targets`` against ``scores`` (both shape (N,)).

    Ties in ``scores`` are merged first (weighted mean of their targets), then the pool
    adjacent violators algorithm merges neighbouring blocks until the means increase.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(targets, dtype=np.float64).reshape(-1)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(s) == 0 or len(s) != len(t) or len(w) != len(s):
        raise ConfigError("isotonic_fit needs equally long, non-empty scores, targets and weights")
    xs, inverse = np.unique(s, return_inverse=True)
    wsum = np.bincount(inverse, weights=w)
    ymean = np.bincount(inverse, weights=w * t) / wsum
    # pool adjacent violators on the tie-merged points: a stack of (mean, weight, count)
    means: list[float] = []
    wts: list[float] = []
    counts: list[int] = []
    for y_i, w_i in zip(ymean, wsum, strict=True):
        m, wt, c = y_i, w_i, 1
        while means and means[-1] >= m:
            pm, pw, pc = means.pop(), wts.pop(), counts.pop()
            m = (pm * pw + m * wt) / (pw + wt)
            wt, c = pw + wt, pc + c
        means.append(m)
        wts.append(wt)
        counts.append(c)
    fitted = np.repeat(np.asarray(means), counts)
    return IsotonicCalibration(xs, fitted)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n0 n1), ties counted half)."""
    y = np.asarray(labels).astype(bool).reshape(-1)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n0 == 0 or n1 == 0:
        raise ConfigError("the AUC needs both classes in the test part")
    ranks = rankdata(np.asarray(scores, dtype=np.float64).reshape(-1))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def binary_cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean BCE in nats, with log terms clamped at -100 like torch's BCELoss."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100.0)
        log_q = np.maximum(np.log1p(-p), -100.0)
    return float(-np.mean(y * log_p + (1 - y) * log_q))


# --------------------------------------------------------------------------- the test
@dataclass(frozen=True)
class ClassifierResult:
    """Outcome of one classifier test (see the module docstring).

    ``scores_reference`` / ``scores_generated``: the trained network's sigmoid output (the
    probability of the class labelled 1, before calibration) on the held-out rows the AUC is
    reported on -- the validation part of the official procedure, the test part of ``fast`` --
    split by true class, shapes (n_ref,) and (n_gen,). Left out of :meth:`to_dict`; its
    :meth:`score_histogram` goes to metrics.json instead.
    """

    mode: str
    auc: float
    jsd: float
    auc_null_sigma: float
    n_train: int
    n_val: int
    n_test: int
    best_epoch: int
    epochs_run: int
    protocol: str
    auc_uncalibrated: float | None = None
    accuracy: float | None = None
    split: str = ""
    score_label: str = ""
    scores_reference: np.ndarray | None = field(default=None, repr=False, compare=False)
    scores_generated: np.ndarray | None = field(default=None, repr=False, compare=False)

    def score_histogram(self, bins: int = 40) -> dict | None:
        """Counts of the held-out scores per class in ``bins`` equal bins spanning both
        samples' range (``None`` without scores): ``edges`` (bins + 1,), ``reference``,
        ``generated`` (bins,), and ``label`` (what the score is)."""
        if self.scores_reference is None or self.scores_generated is None:
            return None
        both = np.concatenate([self.scores_reference, self.scores_generated])
        lo, hi = float(both.min()), float(both.max())
        if hi <= lo:
            lo, hi = lo - 0.5e-3, hi + 0.5e-3
        edges = np.linspace(lo, hi, bins + 1)
        return {
            "edges": edges.tolist(),
            "reference": np.histogram(self.scores_reference, edges)[0].tolist(),
            "generated": np.histogram(self.scores_generated, edges)[0].tolist(),
            "label": self.score_label,
        }

    def to_dict(self) -> dict:
        out = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("scores_reference", "scores_generated")
        }
        out["score_histogram"] = self.score_histogram()
        return out


def _network(n_in: int, protocol: Protocol):
    import torch.nn as nn

    layers: list[nn.Module] = []
    width = n_in
    for _ in range(protocol.hidden_layers):
        layers += [nn.Linear(width, protocol.hidden_units), nn.LeakyReLU()]
        width = protocol.hidden_units
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def _check_inputs(ref: np.ndarray, gen: np.ndarray) -> None:
    """Raise ConfigError unless both samples are finite (N, D) arrays of equal N >= 10 and D."""
    if ref.ndim != 2 or gen.ndim != 2 or ref.shape[1] != gen.shape[1]:
        raise ConfigError(
            f"classifier inputs must be (N, D) with the same D, got {ref.shape} and {gen.shape}"
        )
    if len(ref) != len(gen):
        raise ConfigError(
            f"the classifier test needs equally many reference and generated showers, got "
            f"{len(ref)} and {len(gen)}"
        )
    if len(ref) < 10:
        raise ConfigError(
            f"the classifier test needs at least 10 showers per sample, got {len(ref)}"
        )
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(gen))):
        raise ConfigError("classifier inputs contain NaN or Inf")


def _standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Scale (N, D) inputs with the statistics of the rows ``train``; float32 (N, D').

    PCA whitening (D' = the number of directions with non-negligible variance) for
    D <= :data:`WHITEN_MAX_COLUMNS`, per-column z-scores (D' = D) otherwise.
    """
    x64 = x.astype(np.float64)
    mean = x64[train].mean(axis=0)
    if x.shape[1] > WHITEN_MAX_COLUMNS:
        std = x64[train].std(axis=0)
        return ((x64 - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    cov = np.atleast_2d(np.cov(x64[train], rowvar=False))
    eigval, eigvec = np.linalg.eigh(cov)
    keep = eigval > 1e-12 * max(float(eigval.max()), 1e-300)
    if not np.any(keep):  # every column constant: nothing to learn from, keep one zero column
        return np.zeros((len(x), 1), dtype=np.float32)
    return ((x64 - mean) @ (eigvec[:, keep] / np.sqrt(eigval[keep]))).astype(np.float32)


def classifier_test(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    protocol: str | Protocol = "fast",
    seed: int = 0,
    mode: str = "custom",
    on_epoch: Callable[[int, float], None] | None = None,
) -> ClassifierResult:
    """Train a DNN to separate ``generated`` (label 1) from ``reference`` (label 0).

    Args:
        reference, generated: classifier inputs of equal length, shapes (N, D).
        protocol: ``fast``, ``calochallenge`` or a :class:`Protocol`.
        seed: seeds the split, the initial weights and the minibatch order.
        mode: the input mode's name, recorded in the result.
        on_epoch: called with (epoch, validation accuracy) after each epoch.

    Raises:
        ConfigError: the samples differ in length or width, are too small or hold NaN.
    """
    import torch

    proto = get_protocol(protocol)
    ref = np.asarray(reference, dtype=np.float32)
    gen = np.asarray(generated, dtype=np.float32)
    _check_inputs(ref, gen)

    rng = np.random.default_rng(seed)
    x = np.concatenate([ref, gen])
    y = np.concatenate([np.zeros(len(ref)), np.ones(len(gen))]).astype(np.float32)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
    parts = np.split(np.arange(len(x)), [n_train, n_train + n_val])
    if proto.standardise:
        x = _standardise(x, parts[0])
    tx = [torch.from_numpy(np.ascontiguousarray(x[p])) for p in parts]
    ty = [torch.from_numpy(y[p]) for p in parts]

    torch.manual_seed(seed)
    gen_torch = torch.Generator().manual_seed(seed)
    net = _network(x.shape[1], proto)
    opt = torch.optim.Adam(net.parameters(), lr=proto.learning_rate)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        net.eval()
        with torch.no_grad():
            out = torch.cat([net(inputs[i : i + 8192]) for i in range(0, len(inputs), 8192)])
        return out.reshape(-1)

    best_acc, best_epoch, best_state, epochs_run, stale = -1.0, 0, None, 0, 0
    for epoch in range(1, proto.max_epochs + 1):
        net.train()
        perm = torch.randperm(len(tx[0]), generator=gen_torch)
        for start in range(0, len(perm), proto.batch_size):
            idx = perm[start : start + proto.batch_size]
            opt.zero_grad()
            loss = loss_fn(net(tx[0][idx]).reshape(-1), ty[0][idx])
            loss.backward()
            opt.step()
        acc = float(((predict(tx[1]) > 0).float() == ty[1]).float().mean())
        epochs_run = epoch
        if on_epoch is not None:
            on_epoch(epoch, acc)
        if acc > best_acc:
            best_acc, best_epoch, stale = acc, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if proto.patience is not None and stale >= proto.patience:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    p_val = torch.sigmoid(predict(tx[1])).numpy().astype(np.float64)
    p_test = torch.sigmoid(predict(tx[2])).numpy().astype(np.float64)
    y_val, y_test = ty[1].numpy(), ty[2].numpy()
    # a block of the isotonic fit holding one class only maps to exactly 0 or 1; keep the
    # calibrated probabilities within the validation part's resolution, 1 / (2 n_val)
    floor = 0.5 / len(y_val)
    calibrated = np.clip(isotonic_fit(p_val, y_val)(p_test), floor, 1.0 - floor)
    bce = binary_cross_entropy(y_test, calibrated)
    n1 = int(y_test.sum())
    n0 = len(y_test) - n1
    return ClassifierResult(
        mode=mode,
        auc=roc_auc(y_test, p_test),
        jsd=(math.log(2.0) - bce) / math.log(2.0),
        auc_null_sigma=math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)),
        n_train=len(parts[0]),
        n_val=len(parts[1]),
        n_test=len(parts[2]),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        protocol=proto.name,
        score_label="P(generated), test part, uncalibrated",
        scores_reference=p_test[y_test == 0],
        scores_generated=p_test[y_test == 1],
    )


# --------------------------------------------------------------------------- the official test
#: events per class in train / test / validation of the official split, by dataset (the
#: validation part takes every remaining event)
OFFICIAL_SPLITS = {
    "ds1-photons": (80_000, 20_000, 21_000),
    "ds1-pions": (80_000, 20_000, 20_800),
    "ds2": (60_000, 20_000, 20_000),
    "ds3": (60_000, 20_000, 20_000),
}


@dataclass(frozen=True)
class OfficialIsotonic:
    """The calibration map of the official code: scikit-learn's ``IsotonicRegression(
    out_of_bounds='clip', y_min=1e-6, y_max=1 - 1e-6)`` reimplemented step by step (scores
    closer than 1e-15 to a group's first score are merged, ``scipy.optimize.
    isotonic_regression`` on the weighted means, clipped to [y_min, y_max], linear
    interpolation, scores outside the fitted range clipped to it)."""

    thresholds: np.ndarray
    values: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        from scipy.interpolate import interp1d

        t = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), *self.thresholds[[0, -1]])
        if len(self.values) == 1:
            return np.repeat(self.values, t.shape)
        return interp1d(self.thresholds, self.values, kind="linear")(t)


def official_isotonic_fit(
    scores: np.ndarray, targets: np.ndarray, y_min: float = 1e-6, y_max: float = 1.0 - 1e-6
) -> OfficialIsotonic:
    """Fit :class:`OfficialIsotonic` to scores (N,) and 0/1 targets (N,)."""
    from scipy.optimize import isotonic_regression

    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if len(x) == 0 or len(x) != len(y):
        raise ConfigError("the calibration needs equally long, non-empty scores and targets")
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    eps = np.finfo(np.float64).resolution
    xs, ys, ws = [], [], []
    cur_x, cur_y, cur_w = x[0], 0.0, 0.0
    for xi, yi in zip(x, y, strict=True):
        if xi - cur_x >= eps:
            xs.append(cur_x)
            ws.append(cur_w)
            ys.append(cur_y / cur_w)
            cur_x, cur_w, cur_y = xi, 1.0, yi
        else:
            cur_w += 1.0
            cur_y += yi
    xs.append(cur_x)
    ws.append(cur_w)
    ys.append(cur_y / cur_w)
    fitted = np.asarray(isotonic_regression(np.asarray(ys), weights=np.asarray(ws)).x)
    np.clip(fitted, y_min, y_max, fitted)
    xs_arr = np.asarray(xs)
    keep = np.ones(len(fitted), dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return OfficialIsotonic(xs_arr[keep], fitted[keep])


def official_scores(
    test_scores: np.ndarray, test_labels: np.ndarray, val_scores: np.ndarray, val_labels: np.ndarray
) -> dict:
    """The official final numbers from sigmoid outputs: calibrate on the test part, then on the
    validation part the AUC and accuracy of the calibrated probabilities and
    JSD = (ln 2 - BCE) / ln 2 with torch's BCE (log terms clamped at -100).

    Returns:
        ``auc``, ``jsd``, ``accuracy`` (calibrated) and ``auc_uncalibrated``.
    """
    calibrated = official_isotonic_fit(test_scores, test_labels)(val_scores)
    y = np.asarray(val_labels, dtype=np.float64)
    bce = binary_cross_entropy(y, calibrated)
    return {
        "auc": roc_auc(y, calibrated),
        "jsd": (math.log(2.0) - bce) / math.log(2.0),
        "accuracy": float(np.mean(np.round(calibrated) == y)),
        "auc_uncalibrated": roc_auc(y, val_scores),
    }


def official_split(n_each: int, dataset: str | None) -> tuple[tuple[int, int], str]:
    """Where the official ``ttv_split`` cuts each class: (end of train, end of test) and a
    description. The dataset's fixed counts when each class has more events than train + test
    (the official code fails otherwise); else its fractional split (60 / 20 / 20 %)."""
    counts = OFFICIAL_SPLITS.get(dataset or "")
    if counts is not None and n_each > counts[0] + counts[1]:
        return (counts[0], counts[0] + counts[1]), (
            f"official fixed split for {dataset}: {counts[0]} / {counts[1]} / "
            f"{n_each - counts[0] - counts[1]} per class"
        )
    n_train, n_test = (n_each * np.array([0.6, 0.2, 0.2])).astype(int)[:2]
    why = (
        f"each class has {n_each} events, fewer than the official fixed split "
        f"({counts[0]} + {counts[1]} + more)"
        if counts is not None
        else "no official fixed split for this geometry"
    )
    return (int(n_train), int(n_train + n_test)), (
        f"official fractional split 60 / 20 / 20 % ({why}): {n_train} / {n_test} / "
        f"{n_each - n_train - n_test} per class"
    )


def official_ttv_split(
    generated: np.ndarray, reference: np.ndarray, dataset: str | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The official train / test / validation split of (N, D) inputs, reproduced exactly.

    Each sample gets its label column (generated 0, reference 1, as the official code), is
    shuffled and cut by :func:`official_split`; the train, test and validation parts of the two
    are concatenated (generated first) and each shuffled. The shuffles are drawn, in the
    official order, from numpy's legacy generator ``RandomState(seed)`` -- the stream of the
    official script's global ``np.random`` after ``np.random.seed(seed)`` -- so the same seed
    and sizes give the very split the official ``ttv_split`` draws (pinned against its indices
    in tests/test_evaluate_official.py).

    Returns:
        train, test, val: (n, D + 1) float64 arrays, the label in the last column; and a
        description of the split.
    """
    (cut_1, cut_2), note = official_split(len(reference), dataset)
    rs = np.random.RandomState(seed)
    labelled = [
        np.concatenate([np.asarray(rows, dtype=np.float64), np.full((len(rows), 1), label)], 1)
        for rows, label in ((generated, 0.0), (reference, 1.0))
    ]
    for data in labelled:
        rs.shuffle(data)
    pieces = [np.split(data, [cut_1, cut_2]) for data in labelled]
    parts = [np.concatenate([pieces[0][k], pieces[1][k]]) for k in range(3)]
    for part in parts:
        rs.shuffle(part)
    return parts[0], parts[1], parts[2], note


def _official_network(n_in: int, n_layer: int, n_hidden: int, dropout: float):
    """The official DNN in float64: input layer, ``n_layer`` hidden layers of ``n_hidden``
    LeakyReLU units with dropout, one logit. Created in the official order (input layer,
    output layer, then the hidden layers) so that the same seed gives the same weights."""
    import torch

    first = torch.nn.Linear(n_in, n_hidden, dtype=torch.float64)
    last = torch.nn.Linear(n_hidden, 1, dtype=torch.float64)
    layers: list[torch.nn.Module] = [first, torch.nn.LeakyReLU(), torch.nn.Dropout(dropout)]
    for _ in range(n_layer):
        layers += [
            torch.nn.Linear(n_hidden, n_hidden, dtype=torch.float64),
            torch.nn.LeakyReLU(),
            torch.nn.Dropout(dropout),
        ]
    layers.append(last)
    return torch.nn.Sequential(*layers)


def official_classifier_test(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    dataset: str | None = None,
    seed: int = 0,
    mode: str = "custom",
    n_layer: int = 2,
    n_hidden: int = 2048,
    dropout: float = 0.0,
    batch_size: int = 1000,
    n_epochs: int = 50,
    learning_rate: float = 2e-4,
    on_epoch: Callable[[int, float], None] | None = None,
    network: str = "dnn",
    image_shape: tuple[int, int, int] | None = None,
    resnet_depth: int = 18,
) -> ClassifierResult:
    """The official CaloChallenge classifier test, step by step.

    ``network="resnet"``: the official ``cls-resnet`` network instead of the DNN
    (:mod:`caloforge.evaluate.resnet`, ``resnet_depth`` 10, 18 or 34) on the ``low`` inputs,
    whose voxels are reshaped to ``image_shape`` (n_layers, n_alpha, n_radial); the procedure
    is the same.

    Generated rows get label 0 and reference rows label 1; each class is shuffled and cut by
    :func:`official_split`, the parts are merged and shuffled. The float64 DNN (input layer,
    ``n_layer`` hidden layers of ``n_hidden`` LeakyReLU units, dropout, one logit) is trained
    with Adam and BCE-with-logits on minibatches drawn in random order; after every epoch the
    accuracy on the *test* part picks the best epoch (training stops at accuracy 1); the best
    network's sigmoid outputs on the test part fit the isotonic calibration, and the reported
    AUC and JSD are those of the calibrated outputs on the *validation* part
    (:func:`official_scores`).

    The official code draws its shuffles and weights from numpy's and torch's global
    generators, unseeded. Here ``seed`` seeds them in the same way, and every draw is made in
    the official order (:func:`official_ttv_split`, the layers created input - output -
    hidden, minibatches from torch's ``DataLoader``, torch's global generator forked so the
    caller's is untouched): the official script run with ``np.random.seed(seed)`` and
    ``torch.manual_seed(seed)`` on the same inputs trains on the same split, from the same
    weights, in the same order, and gives the same AUC and JSD (to floating-point rounding
    of the CPU's BLAS; tests/test_evaluate_official.py).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    if network not in ("dnn", "resnet"):
        raise ConfigError(f"unknown classifier network {network!r}; choose dnn or resnet")
    ref = np.asarray(reference, dtype=np.float64)
    gen = np.asarray(generated, dtype=np.float64)
    _check_inputs(ref, gen)
    if network == "resnet" and (
        image_shape is None or 1 + int(np.prod(image_shape)) != ref.shape[1]
    ):
        raise ConfigError(
            f"the ResNet classifier needs 1 + prod(image_shape) input columns, got "
            f"{ref.shape[1]} for image {image_shape}"
        )
    train, test, val, split_note = official_ttv_split(gen, ref, dataset, seed)

    best_acc, best_epoch, best_state, epochs_run = -math.inf, 0, None, 0
    # the official script draws its weights and minibatch orders from torch's global generator
    # (each DataLoader pass takes seeds from it); fork it so that the caller's state is kept
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if network == "resnet":
            from caloforge.evaluate.resnet import build_resnet

            assert image_shape is not None
            net = build_resnet(image_shape, resnet_depth, dtype=torch.float64)
        else:
            net = _official_network(train.shape[1] - 1, n_layer, n_hidden, dropout)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        loaders = [
            DataLoader(TensorDataset(torch.from_numpy(a)), batch_size=batch_size, shuffle=shuffle)
            for a, shuffle in ((train, True), (test, False), (val, False))
        ]

        def sigmoid_outputs(loader: DataLoader) -> np.ndarray:
            net.eval()
            with torch.no_grad():
                out = [net(batch[:, :-1]) for (batch,) in loader]
            return torch.sigmoid(torch.cat(out).reshape(-1)).numpy()

        for epoch in range(1, n_epochs + 1):
            net.train()
            for (batch,) in loaders[0]:
                loss = loss_fn(net(batch[:, :-1]), batch[:, -1].unsqueeze(1))
                opt.zero_grad()
                loss.backward()
                opt.step()
            acc = float(np.mean(np.round(sigmoid_outputs(loaders[1])) == test[:, -1]))
            epochs_run = epoch
            if on_epoch is not None:
                on_epoch(epoch, acc)
            if acc > best_acc:
                best_acc, best_epoch = acc, epoch
                best_state = copy.deepcopy(net.state_dict())
            if acc == 1.0:
                break
        assert best_state is not None
        net.load_state_dict(best_state)
        p_test, p_val = sigmoid_outputs(loaders[1]), sigmoid_outputs(loaders[2])
    scores = official_scores(p_test, test[:, -1], p_val, val[:, -1])
    n1 = int(val[:, -1].sum())
    n0 = len(val) - n1
    return ClassifierResult(
        mode=mode,
        auc=scores["auc"],
        jsd=scores["jsd"],
        auc_null_sigma=math.sqrt((n0 + n1 + 1) / (12.0 * n0 * n1)),
        n_train=len(train),
        n_val=len(test),
        n_test=len(val),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        protocol="calochallenge",
        auc_uncalibrated=scores["auc_uncalibrated"],
        accuracy=scores["accuracy"],
        split=split_note,
        score_label="P(reference), validation part, uncalibrated",
        scores_reference=p_val[val[:, -1] == 1.0],
        scores_generated=p_val[val[:, -1] == 0.0],
    )
