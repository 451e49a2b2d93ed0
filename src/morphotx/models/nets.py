"""Network modules of the model families (PyTorch).

Every network starts with :class:`Standardize` per input modality: a z-score (VAEs: optionally
Chow 2022's min–max scaling) fitted on the *training* profiles and clipped at ±``clip``, stored as buffers so a checkpoint carries it, then
:class:`InputAugment` (Gaussian input noise and feature dropout, training only; no parameters, so
checkpoints are unchanged by it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Standardize(nn.Module):
    """Z-score of the inputs with the training profiles' mean and SD, clipped at ±``clip`` (0: no clip).

    The mean and SD are buffers (saved in checkpoints); they start at 0 and 1 until :meth:`fit`.
    """

    def __init__(self, dim: int, clip: float = 10.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.clip = float(clip)

    def fit(self, X: np.ndarray, scale: str = "zscore") -> Standardize:
        """Fit on the training profiles ``X``: ``zscore`` (centre = mean, scale = SD) or
        ``minmax`` (centre = minimum, scale = range: Chow 2022's 0–1 scaling, so the training rows
        lie in [0, 1] and other rows wherever their values fall). A scale below 1e-6 is set to 1.
        """
        X = np.asarray(X, np.float64)
        if scale == "zscore":
            centre, sd = X.mean(0), X.std(0)
        elif scale == "minmax":
            centre, sd = X.min(0), X.max(0) - X.min(0)
        else:
            raise ValueError(f"input scale must be zscore or minmax; got {scale!r}")
        sd[~np.isfinite(sd) | (sd < 1e-6)] = 1.0
        self.mean.copy_(torch.as_tensor(centre, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(sd, dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The standardised, clipped input."""
        z = (x - self.mean) / self.std
        return z.clamp(-self.clip, self.clip) if self.clip > 0 else z

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Back from standardised units to the input's feature space (no clip to undo)."""
        return z * self.std + self.mean


class InputAugment(nn.Module):
    """Regularisation of standardised inputs, active in training mode only: Gaussian noise of sd
    ``noise`` added to every feature, then each feature zeroed with probability ``feature_dropout``.
    A zeroed standardised feature is the training mean, so the kept features are not rescaled (unlike
    :class:`torch.nn.Dropout`). In eval mode, or with both at 0, the input passes unchanged.
    """

    def __init__(self, noise: float = 0.0, feature_dropout: float = 0.0):
        super().__init__()
        self.noise, self.feature_dropout = float(noise), float(feature_dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The input with noise and feature dropout in training mode; unchanged in eval mode."""
        if not self.training:
            return z
        if self.noise > 0:
            z = z + torch.randn_like(z) * self.noise
        if self.feature_dropout > 0:
            z = z * (torch.rand_like(z) >= self.feature_dropout).to(z.dtype)
        return z


# ---------------------------------------------------------------------------------------------
# Saha 2025: late-fusion supervised contrastive model
# ---------------------------------------------------------------------------------------------
def _encoder_head(d_in: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, out))


class LateFusionSupCon(nn.Module):
    """Per-modality heads Linear(d,512)–BatchNorm–ReLU–Dropout–Linear(512,256), concatenation,
    fusion head Linear(512,256)–ReLU–Dropout–Linear(256,128), L2-normalised output.

    Cell-Painting-only path (Ha 2025's setting: a new compound has no L1000 profile): the L1000
    head's output is replaced by zeros. Training with ``modality_dropout`` > 0 replaces it by zeros
    for that fraction of training samples, so the fusion head learns to embed from Cell Painting
    alone; with 0 the CP-only path is still defined but untrained for that case.
    """

    def __init__(self, d_cp: int, d_l1000: int, hidden: int = 512, head_dim: int = 256, fusion_hidden: int = 256,
                 embedding_dim: int = 128, dropout: float = 0.2, modality_dropout: float = 0.0,
                 clip: float = 10.0, input_noise: float = 0.0, feature_dropout: float = 0.0):
        super().__init__()
        self.norm_cp, self.norm_l1000 = Standardize(d_cp, clip), Standardize(d_l1000, clip)
        self.augment = InputAugment(input_noise, feature_dropout)
        self.head_cp = _encoder_head(d_cp, hidden, head_dim, dropout)
        self.head_l1000 = _encoder_head(d_l1000, hidden, head_dim, dropout)
        self.fusion = nn.Sequential(nn.Linear(2 * head_dim, fusion_hidden), nn.ReLU(), nn.Dropout(dropout),
                                    nn.Linear(fusion_hidden, embedding_dim))
        self.modality_dropout = float(modality_dropout)

    def forward(self, cp: torch.Tensor, l1000: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised fused embeddings; ``l1000=None`` is the Cell-Painting-only path."""
        h_cp = self.head_cp(self.augment(self.norm_cp(cp)))
        if l1000 is None:
            h_l = torch.zeros_like(h_cp)
        else:
            h_l = self.head_l1000(self.augment(self.norm_l1000(l1000)))
            if self.training and self.modality_dropout > 0:
                keep = (torch.rand(h_l.shape[0], 1, device=h_l.device) >= self.modality_dropout).to(h_l.dtype)
                h_l = h_l * keep
        return F.normalize(self.fusion(torch.cat([h_cp, h_l], dim=1)), dim=1)


# ---------------------------------------------------------------------------------------------
# Saha 2025: the "representation learning model", an L1000 → Cell Painting translator
# ---------------------------------------------------------------------------------------------
class Translator(nn.Module):
    """978 → 128 (BatchNorm, ReLU, Dropout) → Cell Painting features. Trained with MSE on
    standardised Cell Painting targets; :meth:`predict` returns the profile in the preprocessed
    feature space.
    """

    def __init__(self, d_l1000: int, d_cp: int, hidden: int = 128, dropout: float = 0.2, clip: float = 10.0,
                 input_noise: float = 0.0, feature_dropout: float = 0.0):
        super().__init__()
        self.norm_l1000, self.norm_cp = Standardize(d_l1000, clip), Standardize(d_cp, clip)
        self.augment = InputAugment(input_noise, feature_dropout)  # the L1000 input only, never the target
        self.encoder = nn.Sequential(nn.Linear(d_l1000, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                     nn.Dropout(dropout))
        self.decoder = nn.Linear(hidden, d_cp)

    def hidden(self, l1000: torch.Tensor) -> torch.Tensor:
        """The translator's hidden layer (``hidden`` units, after BatchNorm, ReLU and dropout) for L1000 profiles."""
        return self.encoder(self.augment(self.norm_l1000(l1000)))

    def forward(self, l1000: torch.Tensor) -> torch.Tensor:
        """Prediction in standardised Cell Painting units (the training target space)."""
        return self.decoder(self.hidden(l1000))

    def predict(self, l1000: torch.Tensor) -> torch.Tensor:
        """The predicted Cell Painting profile in the preprocessed feature space."""
        return self.norm_cp.inverse(self(l1000))


# ---------------------------------------------------------------------------------------------
# Chow 2022: VAE family
# ---------------------------------------------------------------------------------------------
class VAE(nn.Module):
    """Two-layer VAE (one hidden layer in the encoder and in the decoder), LeakyReLU, optional
    encoder BatchNorm; the variant (vanilla / β / MMD) only changes the loss.
    """

    def __init__(self, d_in: int, hidden: int, latent_dim: int = 10, batch_norm: bool = True, clip: float = 10.0):
        super().__init__()
        self.norm = Standardize(d_in, clip)
        layers: list[nn.Module] = [nn.Linear(d_in, hidden)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.LeakyReLU(0.2))
        self.encoder = nn.Sequential(*layers)
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, d_in))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior mean and log-variance (clamped to [-20, 20]) of the inputs."""
        h = self.encoder(self.norm(x))
        return self.mu(h), self.logvar(h).clamp(-20, 20)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction in standardised units, mu, logvar, z)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar, z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded profile in the preprocessed feature space (for traversals and arithmetic)."""
        return self.norm.inverse(self.decoder(z))


# ---------------------------------------------------------------------------------------------
# Lu 2025: cross-modal contrastive encoders with gated-attention set pooling
# ---------------------------------------------------------------------------------------------
class GatedAttentionPool(nn.Module):
    """Lu 2025 eq. 9 (Ilse et al. 2018): ``α_k = softmax_k(wᵀ(tanh(V h_k) ⊙ σ(U h_k)))``,
    pooled ``Σ_k α_k h_k`` over the valid (unmasked) members of each set.
    """

    def __init__(self, dim: int, attention_dim: int = 128):
        super().__init__()
        self.V = nn.Linear(dim, attention_dim, bias=False)
        self.U = nn.Linear(dim, attention_dim, bias=False)
        self.w = nn.Linear(attention_dim, 1, bias=False)

    def weights(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights α (B×S) of the set members, 0 on masked members."""
        a = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1)
        a = a.float().masked_fill(~mask, float("-inf"))
        return torch.softmax(a, dim=1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The attention-weighted sum of each set's members (B×S×d → B×d)."""
        alpha = self.weights(h, mask).to(h.dtype)
        return (alpha.unsqueeze(-1) * h).sum(1)


class MeanPool(nn.Module):
    """Mean of each set's valid (unmasked) members: the ``pooling: mean`` alternative."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean of each set's unmasked members (B×S×d → B×d)."""
        m = mask.to(h.dtype).unsqueeze(-1)
        return (h * m).sum(1) / m.sum(1).clamp_min(1)


class SetEncoder(nn.Module):
    """Instance encoder φ: Linear–LayerNorm–ReLU–Dropout–Linear, then pooling over the set, then a
    linear projection to the embedding; L2-normalised. A single profile is a set of one (the
    pooling weight is 1), so instance and set embeddings live in the same space. LayerNorm, not
    BatchNorm: padded set members must not enter any statistics.
    """

    def __init__(self, d_in: int, hidden: int = 512, embedding_dim: int = 128, dropout: float = 0.1,
                 pooling: str = "gated_attention", attention_dim: int = 128, clip: float = 10.0,
                 input_noise: float = 0.0, feature_dropout: float = 0.0):
        super().__init__()
        self.norm = Standardize(d_in, clip)
        self.augment = InputAugment(input_noise, feature_dropout)
        self.phi = nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden))
        self.pool = GatedAttentionPool(hidden, attention_dim) if pooling == "gated_attention" else MeanPool()
        self.proj = nn.Linear(hidden, embedding_dim)

    def hidden(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The representation before the projection: φ of instances (B×d), or the pooled φ of sets
        (B×S×d with a B×S mask); not normalised.
        """
        h = self.phi(self.augment(self.norm(x)))
        return h if x.dim() == 2 else self.pool(h, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised embeddings of instances (B×d input) or of sets (B×S×d input with a B×S mask)."""
        return F.normalize(self.proj(self.hidden(x, mask)), dim=-1)


class CrossModalContrastive(nn.Module):
    """Cell Painting encoder ↔ L1000 encoder with a learnable logit scale (``1/τ``), initialised
    at 14.3 (Lu 2025, ≈ 1/0.07 as in CLIP) and clamped at ``max_logit_scale``.
    """

    def __init__(self, d_cp: int, d_l1000: int, hidden: int = 512, embedding_dim: int = 128, dropout: float = 0.1,
                 pooling: str = "gated_attention", attention_dim: int = 128, logit_scale_init: float = 14.3,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0, clip: float = 10.0,
                 input_noise: float = 0.0, feature_dropout: float = 0.0):
        super().__init__()
        kw = dict(hidden=hidden, embedding_dim=embedding_dim, dropout=dropout, pooling=pooling,
                  attention_dim=attention_dim, clip=clip, input_noise=input_noise, feature_dropout=feature_dropout)
        self.enc_cp = SetEncoder(d_cp, **kw)
        self.enc_l1000 = SetEncoder(d_l1000, **kw)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(logit_scale_init)),
                                            requires_grad=bool(learn_temperature))
        self.max_logit_scale = float(max_logit_scale)

    def logit_scale(self) -> torch.Tensor:
        """The logit scale ``1/τ``: ``exp(log_logit_scale)`` clamped at ``max_logit_scale``."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)


# ---------------------------------------------------------------------------------------------
# Ha 2025: bimodal autoencoder (cross-modality learning)
# ---------------------------------------------------------------------------------------------
class BimodalAE(nn.Module):
    """Ngiam et al. (2011)'s bimodal deep autoencoder, Ha 2025's second method: per-modality
    encoders Linear(d, hidden)–ReLU–Dropout, a shared linear layer over their concatenation (the
    embedding, ``latent_dim``), and per-modality decoders Linear(latent, hidden)–ReLU–Linear(hidden, d)
    that reconstruct both standardised profiles from the shared layer.

    A missing modality is a zero standardised input (its training mean), as in Ngiam et al.: the
    Cell-Painting-only embedding (:meth:`encode` with ``l1000=None``) is a function of the Cell
    Painting profile alone. No BatchNorm: a batch mixes samples with and without each modality.
    """

    def __init__(self, d_cp: int, d_l1000: int, hidden: int = 256, latent_dim: int = 64, dropout: float = 0.1,
                 clip: float = 10.0):
        super().__init__()
        self.norm_cp, self.norm_l1000 = Standardize(d_cp, clip), Standardize(d_l1000, clip)
        self.enc_cp = nn.Sequential(nn.Linear(d_cp, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.enc_l1000 = nn.Sequential(nn.Linear(d_l1000, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.shared = nn.Linear(2 * hidden, latent_dim)
        self.dec_cp = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, d_cp))
        self.dec_l1000 = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, d_l1000))

    def embed(self, z_cp: torch.Tensor, z_l1000: torch.Tensor) -> torch.Tensor:
        """Shared representation of *standardised* inputs (a zero row: the modality is absent)."""
        return self.shared(torch.cat([self.enc_cp(z_cp), self.enc_l1000(z_l1000)], dim=1))

    def decode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of both modalities in standardised units."""
        return self.dec_cp(h), self.dec_l1000(h)

    def encode(self, cp: torch.Tensor | None = None, l1000: torch.Tensor | None = None) -> torch.Tensor:
        """Embedding of raw (preprocessed) profiles; ``None`` marks the modality as absent."""
        if cp is None and l1000 is None:
            raise ValueError("BimodalAE.encode needs at least one modality")
        n, ref = (cp if cp is not None else l1000).shape[0], cp if cp is not None else l1000
        z_cp = self.norm_cp(cp) if cp is not None else ref.new_zeros(n, self.norm_cp.mean.shape[0])
        z_l = self.norm_l1000(l1000) if l1000 is not None else ref.new_zeros(n, self.norm_l1000.mean.shape[0])
        return self.embed(z_cp, z_l)
