"""Autoencoders and heads shared by the methods.

Lesson: ``notebooks/01_baselines_autoencoders.ipynb`` (architectures and pretraining).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Autoencoder", "MLPAutoencoder", "ConvAutoencoder", "build_autoencoder", "ClusterHeads", "IICNet"]


class Autoencoder(nn.Module):
    """Interface every autoencoder in the course follows: ``encode``, ``decode``, ``forward``.

    ``input_shape`` is the per-sample shape the encoder expects (flat for MLPs, (C, H, W) for
    convolutions); ``embedding_dim`` is the size of the code z.
    """

    input_shape: tuple[int, ...]
    embedding_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """The last hidden representation, before the linear embedding layer."""
        raise NotImplementedError

    @property
    def embedding_layer(self) -> nn.Linear:  # pragma: no cover - interface
        """The linear map features -> z (VaDE adds a twin head for log σ² beside it)."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding_layer(self.features(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction with the input's shape."""
        return self.decode(self.encode(x)).reshape(x.shape)

    def config(self) -> dict:
        """Arguments that rebuild this architecture (used as the pretraining cache key)."""
        raise NotImplementedError  # pragma: no cover - interface


class MLPAutoencoder(Autoencoder):
    """The DEC stacked autoencoder ``d-500-500-2000-10``, mirrored for the decoder.

    ReLU everywhere except the embedding layer (linear, so z can take any sign) and the
    reconstruction layer (linear, as in DEC). The layers are exposed as ``encoder_layers`` and
    ``decoder_layers`` so greedy layer-wise pretraining can train them pair by pair.
    The default ``init="glorot"`` starts from Keras' Glorot-uniform weights with zero biases, as the
    DEC/IDEC reference code did. With the course's 25-epoch pretraining on mnist5k (6 seeds, 1 thread)
    it ends at a lower reconstruction error than PyTorch's default ``init="torch"`` (0.018 vs 0.024)
    and lifts AE + k-means from 0.571 to 0.609 ACC, never lower on a seed, at the same cost
    (benchmarks/RESULTS.md, session 9). Lecture 01 shows both.
    """

    def __init__(self, dims: tuple[int, ...] = (784, 500, 500, 2000, 10), init: str = "glorot"):
        super().__init__()
        dims = tuple(int(d) for d in dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"dims must list at least two positive layer sizes, got {dims}.")
        if init not in ("torch", "glorot"):
            raise ValueError(f"init must be 'torch' (PyTorch's default) or 'glorot', got {init!r}.")
        self.dims = dims
        self.init = init
        self.input_shape = (dims[0],)
        self.embedding_dim = dims[-1]
        pairs = list(zip(dims[:-1], dims[1:], strict=True))
        self.encoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.decoder_layers = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))
        if init == "glorot":  # Keras' default, used by the DEC/IDEC reference code: U(±√(6/(fan_in+fan_out))), b = 0
            for layer in (*self.encoder_layers, *self.decoder_layers):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    @staticmethod
    def _run(layers: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = torch.relu(h)
        return h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), -1)
        for layer in self.encoder_layers[:-1]:
            h = torch.relu(layer(h))
        return h

    @property
    def embedding_layer(self) -> nn.Linear:
        return self.encoder_layers[-1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._run(self.decoder_layers, z)

    def config(self) -> dict:
        # The initialisation is part of the key: the same dims from another start are other weights.
        return {"kind": "mlp", "dims": list(self.dims), "init": self.init}


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class ConvAutoencoder(Autoencoder):
    """A small convolutional autoencoder (the DCEC/DBC design) for single-channel images.

    Three stride-2 convolutions (5x5, 5x5, 3x3) halve the image three times, a linear layer
    maps to the embedding; the decoder mirrors it with transposed convolutions whose output
    padding is computed so any input size (28x28 MNIST, 16x16 USPS, ...) comes back exactly.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        channels: tuple[int, int, int] = (32, 64, 128),
        embedding_dim: int = 10,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (channels, height, width), got {input_shape}.")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.channels = tuple(int(c) for c in channels)
        self.embedding_dim = int(embedding_dim)
        specs = [(5, 2, 2), (5, 2, 2)]
        sizes = [self.input_shape[1:]]
        for k, s, p in specs:
            h, w = sizes[-1]
            sizes.append((_conv_out(h, k, s, p), _conv_out(w, k, s, p)))
        # the last 3x3 conv is unpadded (7x7 -> 3x3 on MNIST) unless the map is already tiny
        pad = 0 if min(sizes[-1]) >= 3 else 1
        specs.append((3, 2, pad))
        sizes.append(tuple(_conv_out(v, 3, 2, pad) for v in sizes[-1]))
        if min(sizes[-1]) < 1:
            raise ValueError(f"Images of shape {input_shape} are too small for three stride-2 convs.")
        in_ch = [self.input_shape[0], *self.channels[:-1]]
        self.encoder_convs = nn.ModuleList(
            nn.Conv2d(i, o, k, s, p) for i, o, (k, s, p) in zip(in_ch, self.channels, specs, strict=True)
        )
        self._bottom = (self.channels[-1], *sizes[-1])
        flat = math.prod(self._bottom)
        self.to_embedding = nn.Linear(flat, self.embedding_dim)
        self.from_embedding = nn.Linear(self.embedding_dim, flat)
        deconvs = []
        for level in range(len(specs) - 1, -1, -1):
            k, s, p = specs[level]
            (h_in, w_in), (h_out, w_out) = sizes[level + 1], sizes[level]
            pad_h = h_out - ((h_in - 1) * s - 2 * p + k)
            pad_w = w_out - ((w_in - 1) * s - 2 * p + k)
            deconvs.append(
                nn.ConvTranspose2d(self.channels[level], in_ch[level], k, s, p, output_padding=(pad_h, pad_w))
            )
        self.decoder_convs = nn.ModuleList(deconvs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), *self.input_shape)
        for conv in self.encoder_convs:
            h = torch.relu(conv(h))
        return h.flatten(1)

    @property
    def embedding_layer(self) -> nn.Linear:
        return self.to_embedding

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.from_embedding(z)).reshape(len(z), *self._bottom)
        for i, deconv in enumerate(self.decoder_convs):
            h = deconv(h)
            if i < len(self.decoder_convs) - 1:
                h = torch.relu(h)
        return h

    def config(self) -> dict:
        return {
            "kind": "conv",
            "input_shape": list(self.input_shape),
            "channels": list(self.channels),
            "embedding_dim": self.embedding_dim,
        }


def build_autoencoder(
    autoencoder: str | Autoencoder,
    sample_shape: tuple[int, ...],
    dims: tuple[int, ...] | None = None,
    embedding_dim: int = 10,
) -> Autoencoder:
    """Turn ``"mlp"``/``"conv"``/a module into an autoencoder that fits the data's sample shape.

    For ``"mlp"`` the first entry of ``dims`` is replaced by the data's flat size, so the same
    default ``(784, 500, 500, 2000, 10)`` works on 8x8 digits too.
    """
    flat = math.prod(sample_shape)
    if isinstance(autoencoder, Autoencoder):
        expected = math.prod(autoencoder.input_shape)
        if expected != flat:
            raise ValueError(
                f"The autoencoder expects {expected} input values per sample but the data has "
                f"{flat} (shape {sample_shape}); build it for this data."
            )
        return autoencoder
    if autoencoder == "mlp":
        dims = tuple(dims) if dims is not None else (784, 500, 500, 2000, embedding_dim)
        return MLPAutoencoder((flat, *dims[1:]))
    if autoencoder == "conv":
        if len(sample_shape) != 3:
            raise ValueError(
                f"autoencoder='conv' needs images of shape (n, C, H, W); got samples of shape "
                f"{sample_shape}. Use autoencoder='mlp' for flat features."
            )
        emb = dims[-1] if dims is not None else embedding_dim
        return ConvAutoencoder(tuple(sample_shape), embedding_dim=emb)
    raise ValueError(f"autoencoder must be 'mlp', 'conv' or an Autoencoder module, got {autoencoder!r}.")


class ClusterHeads(nn.Module):
    """``n_heads`` independent linear+softmax heads on the same features (IIC's sub-heads).

    Returns probabilities of shape (n_heads, n, n_clusters); different random initialisations
    let the sub-heads reach different solutions, and the lowest-loss one is kept.
    """

    def __init__(self, in_features: int, n_clusters: int, n_heads: int = 5):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, n_clusters) for _ in range(n_heads))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(head(h), dim=1) for head in self.heads])


class IICNet(nn.Module):
    """A small VGG-like conv net for small images with a main head and an over-clustering head.

    Three blocks conv3x3-BN-ReLU-maxpool (``channels``), then two sets of sub-heads:
    ``main`` with ``n_clusters`` outputs and ``over`` with ``overcluster_k`` (0 disables it).
    """

    def __init__(self, input_shape=(1, 28, 28), n_clusters: int = 10, overcluster_k: int = 50,
                 n_heads: int = 5, channels: tuple[int, ...] = (64, 128, 256)):
        super().__init__()
        blocks, in_ch = [], input_shape[0]
        for out_ch in channels:
            blocks += [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            in_ch = out_ch
        self.trunk = nn.Sequential(*blocks, nn.Flatten())
        with torch.no_grad():
            n_features = self.trunk(torch.zeros(1, *input_shape)).shape[1]
        self.main = ClusterHeads(n_features, n_clusters, n_heads)
        self.over = ClusterHeads(n_features, overcluster_k, n_heads) if overcluster_k else None

    def forward(self, x: torch.Tensor, head: str = "main") -> torch.Tensor:
        features = self.trunk(x)
        return (self.main if head == "main" else self.over)(features)
