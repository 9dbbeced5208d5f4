"""dclib: the library behind the deep clustering course.

Data -> model -> loss -> the one training loop -> estimator -> metrics -> plots.
"""

from .data import Dataset, load_dataset
from .methods import (
    DAC,
    DBC,
    DCN,
    DEC,
    DEN,
    DEPICT,
    IDEC,
    IIC,
    IMSAT,
    JULE,
    AEKMeans,
    CatGAN,
    DeepClusterer,
    DegenerateClusteringWarning,
    EmbeddingClustering,
    InfoGAN,
    KMeansBaseline,
    VaDE,
    taxonomy_method,
)
from .metrics import ari, cluster_acc, evaluate, matched_confusion_matrix, nmi
from .utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "load_dataset",
    "cluster_acc",
    "nmi",
    "ari",
    "evaluate",
    "matched_confusion_matrix",
    "get_device",
    "seed_everything",
    "KMeansBaseline",
    "AEKMeans",
    "DEC",
    "IDEC",
    "VaDE",
    "IIC",
    "DCN",
    "DegenerateClusteringWarning",
    "DBC", "DeepClusterer", "taxonomy_method",
    "IMSAT", "DAC", "DEPICT",
    "InfoGAN", "CatGAN",
    "DEN", "EmbeddingClustering", "JULE",
]
