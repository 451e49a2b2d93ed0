"""Losses of the model families, written from the seeds' equations.

* :func:`supcon_loss` — supervised contrastive loss (Saha 2025, Khosla et al. 2020, "L_out" form):
  ``L_i = -1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a∈A(i)} exp(z_i·z_a/τ) )`` with
  ``A(i)`` = every other sample of the batch and ``P(i)`` = the samples that share a MoA with ``i``.
  **Multi-MoA compounds**: labels are multi-hot; two samples are positives when they share *at least
  one* MoA. Anchors with no positive in the batch (and samples with no MoA at all) contribute no
  term; the loss is the mean over anchors that have at least one positive. With ``groups`` (the
  family passes compounds, ``positives: other_compounds``) the anchor's own compound is removed
  from ``A(i)`` and ``P(i)``.
* :func:`clip_loss` — Lu 2025 eq. 1: the *sum* of the two directional cross-entropies, averaged
  over the batch. ``logit_scale`` is the multiplier ``1/τ``.
* :func:`cwcl_loss` — Lu 2025 eq. 5–6 (Srinivasa et al. 2023): the U→V (Cell Painting → L1000)
  direction uses continuous weights ``w_ij`` (within-modality similarity of the Cell Painting
  side) over *every* candidate ``j``; the V→U direction is plain CLIP. Eq. 5 as printed in the seed
  has ``q_i`` in the numerator (which would make the weights cancel) and drops the minus sign; we
  implement the CWCL paper's form ``-1/N Σ_i 1/Σ_j w_ij Σ_j w_ij log softmax_j(p_i·q_j/τ)``,
  which equals CLIP's U→V term when ``W`` is the identity (tested).
* :func:`cwcl_weights` — footnote 3 of Lu 2025: ``w_ij = cos(μ_i, μ_j)/2 + 0.5`` ∈ [0, 1].
* :func:`kl_divergence`, :func:`mmd` — the VAE regularisers of Chow 2022: closed-form KL of a
  diagonal Gaussian to N(0, I) (summed over latent units, mean over the batch), and the maximum
  mean discrepancy between the latent sample and a sample of the prior with a Gaussian kernel
  (the "kernel trick", biased V-statistic, so MMD(x, x) = 0 exactly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1,
                groups: torch.Tensor | None = None) -> torch.Tensor:
    """SupCon on L2-normalised embeddings ``z`` (B×d) with multi-hot ``labels`` (B×C).

    ``groups`` (B, e.g. the compound of each sample): other samples of the anchor's own group are
    left out of both its positives and its denominator, like the anchor itself. Positives are then
    *other compounds* sharing a MoA, so the loss cannot be lowered by clustering a compound's own
    replicates and doses, and nothing pushes those apart either.
    """
    z = F.normalize(z.float(), dim=1)
    lab = labels.float()
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    out = eye if groups is None else groups[:, None] == groups[None, :]
    pos = ((lab @ lab.T) > 0) & ~out
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(out, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0  # no anchor with a positive: a zero that keeps the graph
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(1)[has]) / n_pos[has]
    return per_anchor.mean()


def clip_loss(p: torch.Tensor, q: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Lu 2025 eq. 1 on L2-normalised ``p`` (Cell Painting) and ``q`` (L1000); ``p_i`` ↔ ``q_i``."""
    logits = logit_scale * (p.float() @ q.float().T)
    target = torch.arange(p.shape[0], device=p.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)


def cwcl_loss(p: torch.Tensor, q: torch.Tensor, logit_scale: torch.Tensor | float,
              weights: torch.Tensor) -> torch.Tensor:
    """Lu 2025 eq. 6: CWCL (U→V, continuous ``weights`` B×B) + CLIP (V→U)."""
    logits = logit_scale * (p.float() @ q.float().T)
    w = weights.float()
    log_sm = torch.log_softmax(logits, dim=1)
    u2v = -((w * log_sm).sum(1) / w.sum(1).clamp_min(1e-12)).mean()
    target = torch.arange(p.shape[0], device=p.device)
    v2u = F.cross_entropy(logits.T, target)
    return u2v + v2u


def cwcl_weights(profiles: torch.Tensor) -> torch.Tensor:
    """``w_ij = cos(μ_i, μ_j)/2 + 0.5`` from (pooled) Cell Painting input profiles (B×d)."""
    m = F.normalize(profiles.float(), dim=1)
    return (m @ m.T) / 2 + 0.5


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent units, mean over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """``k(x, y) = exp(-||x - y||² / bandwidth)``. The bandwidth defaults to d² (d: the dimension),
    i.e. ``exp(-mean_i (x_i - y_i)² / d)``, the kernel of Chow 2022's MMD-VAE code, so that its λ
    values mean what they meant there; ``bandwidth = d`` gives the InfoVAE paper's form, a penalty
    5–30× larger at d = 10.
    """
    bw = float(bandwidth or x.shape[1] ** 2)
    return torch.exp(-torch.cdist(x.float(), y.float()).pow(2) / bw)


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Biased MMD² estimate between samples ``x`` and ``y`` (rows are points)."""
    return (gaussian_kernel(x, x, bandwidth).mean() + gaussian_kernel(y, y, bandwidth).mean()
            - 2 * gaussian_kernel(x, y, bandwidth).mean())


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error summed over features, mean over the batch (Gaussian log-likelihood up to
    constants; the scale against which β and λ are set).
    """
    return (x_hat.float() - x.float()).pow(2).sum(1).mean()
