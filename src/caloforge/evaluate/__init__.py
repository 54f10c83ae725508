"""CaloChallenge 2022 evaluation: features, separation powers, classifier test, FPD/KPD, report.

By default every number is the one the official CaloChallenge evaluation code computes
(docs/evaluation.md; cross-checked in tests/test_evaluate_official.py).

Typical use::

    from caloforge.evaluate import evaluate
    metrics = evaluate("gen.h5", "ref.h5", out_dir="report/")   # official protocol (GPU-sized)
    metrics = evaluate("gen.h5", "ref.h5", out_dir="quick/", protocol="fast", summary=True)

The modules, each with one job:

==================  ===============================================================
``features``        high-level features per shower, streamed over file chunks
``histograms``      binning of every feature, unit-area histograms, separation power
``classifier``      the DNN classifier test (AUC, JSD after isotonic calibration)
``distances``       FPD (extrapolated in 1/N) and KPD (unbiased MMD^2, polynomial kernel)
``multiclass``      one classifier over the reference and several generated samples
``prdc``            precision, recall, density, coverage of the voxels (official ``prdc``)
``profiles``        response per energy, longitudinal and radial profiles (numbers only)
``verdict``         pass/fail of user thresholds (``--pass 'cls-high.auc<0.6'``)
``pareto``          fidelity against time-per-shower points for ``compare --pareto``
``page``            the self-contained ``index.html`` (verdict first, detail collapsed)
``plots``           the report's figures (matplotlib on local Agg canvases)
``report``          :func:`evaluate` and :func:`compare`
==================  ===============================================================

Matplotlib and torch are imported only when figures are drawn or a classifier is trained.
"""

from caloforge.evaluate.classifier import (
    PROTOCOLS,
    ClassifierResult,
    IsotonicCalibration,
    Protocol,
    classifier_inputs,
    classifier_test,
    get_protocol,
    isotonic_fit,
    official_classifier_test,
    official_isotonic_fit,
    official_scores,
    official_ttv_split,
    roc_auc,
)
from caloforge.evaluate.distances import DistanceResult, fpd, frechet_distance, kpd, mmd2_unbiased
from caloforge.evaluate.features import (
    DEFAULT_THRESHOLDS_MEV,
    FeatureExtractor,
    ShowerFeatures,
    StreamedSample,
    default_threshold,
    stream_features,
)
from caloforge.evaluate.histograms import (
    Binning,
    feature_binnings,
    feature_columns,
    official_binnings,
    separation_power,
    separation_powers,
)
from caloforge.evaluate.multiclass import MulticlassResult, multiclass_test
from caloforge.evaluate.prdc import prdc, prdc_features
from caloforge.evaluate.report import ComparisonTable, compare, evaluate, resolve_geometries
from caloforge.evaluate.spectra import VoxelHistogram, VoxelSpectrum

__all__ = [
    "DEFAULT_THRESHOLDS_MEV",
    "PROTOCOLS",
    "Binning",
    "ClassifierResult",
    "ComparisonTable",
    "DistanceResult",
    "FeatureExtractor",
    "IsotonicCalibration",
    "MulticlassResult",
    "Protocol",
    "ShowerFeatures",
    "StreamedSample",
    "VoxelHistogram",
    "VoxelSpectrum",
    "classifier_inputs",
    "classifier_test",
    "compare",
    "default_threshold",
    "evaluate",
    "feature_binnings",
    "feature_columns",
    "fpd",
    "frechet_distance",
    "get_protocol",
    "isotonic_fit",
    "kpd",
    "mmd2_unbiased",
    "multiclass_test",
    "official_classifier_test",
    "official_ttv_split",
    "official_isotonic_fit",
    "official_scores",
    "prdc",
    "prdc_features",
    "official_binnings",
    "resolve_geometries",
    "roc_auc",
    "separation_power",
    "separation_powers",
    "stream_features",
]
