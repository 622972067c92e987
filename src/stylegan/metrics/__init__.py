"""Metrics: FID, KID, precision/recall, PPL, IS and SWD with offline feature networks.

Public API:
    compute_metric(name, generator=..., data=..., feature_net=...)  -> JSON-ready record
    METRICS                      registry of metric names (evaluate.py)
    FEATURE_NETS, load_feature_net, extract_features    feature networks (features.py)
    frechet_distance, kernel_inception_distance, sliced_wasserstein_distance, perceptual_path_length
                                 the formulas as plain functions; precision/recall and IS live in
                                 stylegan.metrics.precision_recall / .inception_score

See docs/metrics.md for the settings, the weights each network needs and calibration numbers.
"""
from stylegan.metrics.evaluate import METRICS, compute_metric, metric_spec
from stylegan.metrics.features import FEATURE_NETS, extract_features, load_feature_net
from stylegan.metrics.frechet import feature_statistics, fid_from_features, frechet_distance
from stylegan.metrics.kid import kernel_inception_distance
from stylegan.metrics.ppl import PPL_DISTANCES, PPLConfig, perceptual_path_length
from stylegan.metrics.swd import sliced_wasserstein_distance

__all__ = [
    "METRICS", "compute_metric", "metric_spec", "FEATURE_NETS", "extract_features", "load_feature_net",
    "feature_statistics", "fid_from_features", "frechet_distance", "kernel_inception_distance",
    "PPL_DISTANCES", "PPLConfig", "perceptual_path_length", "sliced_wasserstein_distance",
]
