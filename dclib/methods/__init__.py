"""One estimator per method, all with the scikit-learn API (``fit``/``predict``/``labels_``)."""

from .base import AutoencoderClusterer, BaseClusterer, DegenerateClusteringWarning
from .baselines import AEKMeans, KMeansBaseline
from .catgan import CatGAN
from .dac import DAC
from .dbc import DBC
from .dcn import DCN
from .dec import DEC, IDEC
from .deep_clusterer import DeepClusterer, taxonomy_method
from .den import DEN
from .depict import DEPICT
from .embedding import EmbeddingClustering
from .iic import IIC
from .imsat import IMSAT
from .infogan import InfoGAN
from .jule import JULE
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
    "DBC", "DeepClusterer", "taxonomy_method",
    "IMSAT", "DAC", "DEPICT",
    "DEN", "EmbeddingClustering", "JULE",
    "InfoGAN", "CatGAN",
]
