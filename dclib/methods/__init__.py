"""One estimator per method, all with the scikit-learn API (``fit``/``predict``/``labels_``)."""

from .base import AutoencoderClusterer, BaseClusterer, DegenerateClusteringWarning
from .baselines import AEKMeans, KMeansBaseline

__all__ = [
    "BaseClusterer",
    "AutoencoderClusterer",
    "DegenerateClusteringWarning",
    "KMeansBaseline",
    "AEKMeans",
]
