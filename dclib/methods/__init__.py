"""One estimator per method, all with the scikit-learn API (``fit``/``predict``/``labels_``)."""

from .base import AutoencoderClusterer, BaseClusterer, DegenerateClusteringWarning
from .baselines import AEKMeans, KMeansBaseline
from .dcn import DCN
from .dec import DEC, IDEC
from .iic import IIC
from .vade import VaDE

__all__ = [
    "BaseClusterer",
    "AutoencoderClusterer",
    "DegenerateClusteringWarning",
    "KMeansBaseline",
    "AEKMeans",
    "DEC",
    "IDEC",
    "VaDE",
    "IIC",
    "DCN",
]
