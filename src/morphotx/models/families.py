"""The model families: how each builds its network, draws batches, computes its loss and embeds.

==============  =================================================================  ==============
family          what it learns                                                     views written
==============  =================================================================  ==============
``supcon``      Saha 2025 late-fusion SupCon on MoA labels                          both, cp
``translator``  Saha 2025 "representation learning": L1000 → Cell Painting (MSE)    l1000
``vae``         Chow 2022 vanilla / β / MMD VAE on cp, l1000 or their concatenation  cp | l1000 | both
``contrastive`` Lu 2025 CLIP / CWCL between the modalities; ``unit: sets`` adds    both, cp, l1000
                gated-attention pooling over each treatment's replicate sets (eq. 9)
``bimodal_ae``  Ha 2025 bimodal autoencoder: both modalities reconstructed from     both, cp, l1000
                one shared layer, trained with one modality zeroed for a fraction
                of samples (Ngiam et al. 2011) so Cell Painting alone embeds
==============  =================================================================  ==============

Views are named by the input they need: ``cp`` embeddings need only Cell Painting (Ha 2025's
cross-modality setting: a new compound with Cell Painting only), ``l1000`` only L1000, ``both``
a Cell Painting + L1000 pair.

Regularisation for unseen compounds (supcon, contrastive; translator off by default): Gaussian
``input_noise`` and ``feature_dropout`` on the standardised inputs (:class:`.nets.InputAugment`,
training only), AdamW ``weight_decay``; contrastive batches hold at most one item per compound
(:func:`.data.distinct_compound_batches`), so other doses are never negatives.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import schema as S
from . import losses as L
from . import nets
from .data import Items, ModelData, distinct_compound_batches, moa_batches, random_batches


def _t(a: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), device=device) if not a.flags.writeable else torch.as_tensor(a, device=device)


class Family:
    """What the trainer and the embedder need of a model family; one subclass per family.

    Parameters
    ----------
    hp : dataclass
        The model's resolved hyperparameters (:func:`.config.resolve`).
    clip : float
        The inputs' clip after standardisation (``train.input_clip``).
    """

    modalities: tuple[str, ...] = ("cp", "l1000")

    def __init__(self, hp, clip: float):
        self.hp, self.clip = hp, clip

    # network ----------------------------------------------------------------------------------
    def build(self, data: ModelData, train_items: Items | None) -> torch.nn.Module:
        """The family's network, its input standardisation fitted on the profiles behind
        ``train_items`` (``None``: not fitted; a checkpoint fills it).
        """
        raise NotImplementedError

    def _fit_norm(self, norm: nets.Standardize, data: ModelData, items: Items | None, m: str) -> None:
        """Fit an input standardisation on the training profiles (``items`` None: leave it, the
        buffers come from a checkpoint).
        """
        if items is not None:
            norm.fit(data.fit_rows(items, m))

    # batches ----------------------------------------------------------------------------------
    def items(self, data: ModelData, split: str) -> Items:
        """The training units (``hp.unit``) of ``split`` that have data in the family's modalities."""
        return data.items(self.hp.unit, split, self.modalities)

    def batches(self, data: ModelData, items: Items, rng: np.random.Generator) -> list[np.ndarray]:
        """One epoch's training batches: shuffled runs of ``hp.batch_size`` item indices."""
        return random_batches(len(items), self.hp.batch_size, rng)

    eval_full_pass = False  # per-sample losses: validate on every item in order, in large batches

    def eval_batches(self, data: ModelData, items: Items, rng: np.random.Generator) -> list[np.ndarray]:
        """Validation batches, drawn once with a fixed generator so epochs are comparable."""
        if self.eval_full_pass:
            return random_batches(len(items), 4096, rng, shuffle=False)
        return self.batches(data, items, rng)

    # loss -------------------------------------------------------------------------------------
    def step(self, model, batch: dict, device) -> dict[str, torch.Tensor]:
        """The loss of one batch: ``{"loss": ..., <term>: ...}`` (the terms are logged per epoch)."""
        raise NotImplementedError

    # embeddings -------------------------------------------------------------------------------
    def encode(self, model, view: str, arrays: dict, device) -> torch.Tensor:
        """Embeddings of instances (B×d per modality) for ``view``."""
        raise NotImplementedError

    def pool(self, model, view: str, sets: dict, device) -> torch.Tensor | None:
        """Set-level embeddings (B×S×d + mask); None: collapse by the median instead."""
        return None


class SupCon(Family):
    """Saha 2025 late-fusion supervised contrastive model on MoA labels (:class:`.nets.LateFusionSupCon`)."""

    def build(self, data, items):
        """The late-fusion network, each modality standardised on its training profiles."""
        hp = self.hp
        net = nets.LateFusionSupCon(data.dim("cp"), data.dim("l1000"), hp.hidden, hp.head_dim, hp.fusion_hidden,
                                    hp.embedding_dim, hp.dropout, hp.modality_dropout, self.clip,
                                    hp.input_noise, hp.feature_dropout)
        self._fit_norm(net.norm_cp, data, items, "cp")
        self._fit_norm(net.norm_l1000, data, items, "l1000")
        return net

    def batches(self, data, items, rng):
        """MoA-balanced batches (:func:`.data.moa_batches`), about one pass over the items per epoch."""
        n_batches = max(1, int(np.ceil(len(items) / (self.hp.moas_per_batch * self.hp.per_moa))))
        return moa_batches(data.labels[items.treat], self.hp.moas_per_batch, self.hp.per_moa, n_batches, rng,
                           split=items.split or "train")

    def step(self, model, batch, device):
        """The supervised contrastive loss (MoA labels as positives) of a batch's fused embeddings."""
        z = model(_t(batch["cp"], device), _t(batch["l1000"], device))
        groups = _t(batch["compound"], device) if self.hp.positives == "other_compounds" else None
        return {"loss": L.supcon_loss(z, _t(batch["labels"], device), self.hp.temperature, groups)}

    def encode(self, model, view, arrays, device):
        """Fused embeddings from both modalities (``both``) or from Cell Painting alone (``cp``)."""
        l1k = _t(arrays["l1000"], device) if view == "both" else None
        return model(_t(arrays["cp"], device), l1k)


class Translator(Family):
    """Saha 2025 L1000 → Cell Painting translator (:class:`.nets.Translator`), MSE loss."""

    eval_full_pass = True

    def build(self, data, items):
        """The translator, its L1000 input and Cell Painting target standardised on training profiles."""
        hp = self.hp
        net = nets.Translator(data.dim("l1000"), data.dim("cp"), hp.hidden, hp.dropout, self.clip,
                              hp.input_noise, hp.feature_dropout)
        self._fit_norm(net.norm_l1000, data, items, "l1000")
        self._fit_norm(net.norm_cp, data, items, "cp")
        return net

    def step(self, model, batch, device):
        """The MSE between the predicted and the standardised Cell Painting profiles."""
        target = model.norm_cp(_t(batch["cp"], device))
        pred = model(_t(batch["l1000"], device))
        return {"loss": torch.nn.functional.mse_loss(pred.float(), target.float())}

    def encode(self, model, view, arrays, device):
        """The predicted Cell Painting profile (``embedding: output``) or the hidden layer, from L1000."""
        x = _t(arrays["l1000"], device)
        return model.predict(x) if self.hp.embedding == "output" else model.hidden(x)


class VAE(Family):
    """Chow 2022 VAE (vanilla, β or MMD; :class:`.nets.VAE`) of one modality or of their concatenation."""

    eval_full_pass = True

    def __init__(self, hp, clip):
        super().__init__(hp, clip)
        self.modalities = S.modalities(hp.input)

    def _x(self, arrays, device) -> torch.Tensor:
        if self.hp.input == "concat":
            return torch.cat([_t(arrays["cp"], device), _t(arrays["l1000"], device)], dim=1)
        return _t(arrays[self.hp.input], device)

    def build(self, data, items):
        """The VAE; a concatenated input is standardised per modality on its own training profiles."""
        hp = self.hp
        d = sum(data.dim(m) for m in self.modalities)
        net = nets.VAE(d, int(hp.hidden), hp.latent_dim, hp.batch_norm, self.clip)
        if items is None:
            return net
        fit = [data.fit_rows(items, m) for m in self.modalities]
        if len(fit) == 2:  # concatenation: scale each modality on its own training profiles
            norms = [nets.Standardize(f.shape[1]).fit(f, hp.input_scale) for f in fit]
            net.norm.mean.copy_(torch.cat([n.mean for n in norms]))
            net.norm.std.copy_(torch.cat([n.std for n in norms]))
        else:
            net.norm.fit(fit[0], hp.input_scale)
        return net

    def step(self, model, batch, device):
        """Reconstruction loss plus β·KL (vanilla, β) or λ·MMD to a standard normal sample (mmd).

        In eval mode the MMD uses the posterior means and a fixed prior sample, so validation losses
        are comparable across epochs.
        """
        x = self._x(batch, device)
        x_hat, mu, logvar, z = model(x)
        recon = L.reconstruction_loss(x_hat, model.norm(x))
        if self.hp.variant == "mmd":
            prior = torch.randn_like(z) if model.training else torch.as_tensor(
                np.random.default_rng(0).standard_normal(tuple(z.shape)), dtype=z.dtype, device=z.device)
            reg = L.mmd(z if model.training else mu, prior, self.hp.mmd_bandwidth)
            return {"loss": recon + self.hp.mmd_lambda * reg, "reconstruction": recon, "mmd": reg}
        kl = L.kl_divergence(mu, logvar)
        return {"loss": recon + self.hp.beta * kl, "reconstruction": recon, "kl": kl}

    def encode(self, model, view, arrays, device):
        """The posterior means (μ) of the input."""
        mu, _ = model.encode(self._x(arrays, device))
        return mu


class Contrastive(Family):
    """Lu 2025 CLIP / CWCL between Cell Painting and L1000 encoders (:class:`.nets.CrossModalContrastive`)."""

    def build(self, data, items):
        """The two encoders (gated-attention or mean pooling for ``unit: sets``), each standardised on
        its training profiles.
        """
        hp = self.hp
        net = nets.CrossModalContrastive(data.dim("cp"), data.dim("l1000"), hp.hidden, hp.embedding_dim, hp.dropout,
                                         hp.pooling if hp.unit == "sets" else "mean", hp.attention_dim,
                                         hp.logit_scale_init, hp.learn_temperature, hp.max_logit_scale, self.clip,
                                         hp.input_noise, hp.feature_dropout)
        self._fit_norm(net.enc_cp.norm, data, items, "cp")
        self._fit_norm(net.enc_l1000.norm, data, items, "l1000")
        return net

    def batches(self, data, items, rng):
        """Batches without two items of one compound (every unit): see
        :func:`.data.distinct_compound_batches`.
        """
        return distinct_compound_batches(data.compound[items.treat], self.hp.batch_size, rng)

    def _side(self, enc, batch, m, device):
        x = _t(batch[m], device)
        mask = _t(batch[f"{m}_mask"], device) if f"{m}_mask" in batch else None
        return enc(x, mask)

    def step(self, model, batch, device):
        """The CLIP loss, or CWCL weighted by the similarity of the standardised Cell Painting inputs
        (the mean input of each set for ``unit: sets``), between the two modalities' embeddings.
        """
        p = self._side(model.enc_cp, batch, "cp", device)
        q = self._side(model.enc_l1000, batch, "l1000", device)
        scale = model.logit_scale()
        if self.hp.loss == "cwcl":
            cp = _t(batch["cp"], device)
            if "cp_mask" in batch:  # pooled input profile of each set (mean of its members)
                m = _t(batch["cp_mask"], device).float().unsqueeze(-1)
                cp = (model.enc_cp.norm(cp) * m).sum(1) / m.sum(1).clamp_min(1)
            else:
                cp = model.enc_cp.norm(cp)
            loss = L.cwcl_loss(p, q, scale, L.cwcl_weights(cp))
        else:
            loss = L.clip_loss(p, q, scale)
        return {"loss": loss, "logit_scale": scale.detach()}

    def _embed(self, enc, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """An encoder's output (``embedding: projection``) or its representation before the
        projection (``embedding: hidden``, see :meth:`.nets.SetEncoder.hidden`).
        """
        return enc(x, mask) if self.hp.embedding == "projection" else enc.hidden(x, mask)

    def encode(self, model, view, arrays, device):
        """Instance embeddings: one modality's (``cp``, ``l1000``) or both concatenated (``both``)."""
        out = [self._embed(enc, _t(arrays[m], device))
               for m, enc in (("cp", model.enc_cp), ("l1000", model.enc_l1000)) if view in (m, "both")]
        return torch.cat(out, 1)

    def pool(self, model, view, sets, device):
        """Set embeddings (one modality's or both concatenated) for ``unit: sets``; ``None`` otherwise."""
        if self.hp.unit != "sets":
            return None
        out = [self._embed(enc, _t(sets[m], device), _t(sets[f"{m}_mask"], device))
               for m, enc in (("cp", model.enc_cp), ("l1000", model.enc_l1000)) if view in (m, "both")]
        return torch.cat(out, 1)


class BimodalAE(Family):
    """Ha 2025's bimodal autoencoder. Loss: the mean squared error of the standardised Cell
    Painting reconstruction plus that of the L1000 reconstruction (each a mean over features, so
    the two modalities weigh the same whatever their dimensions), always against *both* complete
    profiles. Training: each sample's input is, at random, Cell Painting only (probability
    ``cp_only``), L1000 only (``l1000_only``) or both (the rest); the absent modality's
    standardised input is zero. Validation (eval mode): the same mixture as its expectation, the
    three cases' losses weighted by their probabilities, so epochs are compared without noise.
    """

    eval_full_pass = True

    def build(self, data, items):
        """The bimodal autoencoder, sized by the two modalities' feature counts."""
        hp = self.hp
        net = nets.BimodalAE(data.dim("cp"), data.dim("l1000"), hp.hidden, hp.latent_dim, hp.dropout, self.clip)
        self._fit_norm(net.norm_cp, data, items, "cp")
        self._fit_norm(net.norm_l1000, data, items, "l1000")
        return net

    def cases(self) -> list[tuple[str, float]]:
        """The input cases (``both`` / ``cp`` / ``l1000``) with their probabilities > 0."""
        hp = self.hp
        return [(c, w) for c, w in (("both", 1.0 - hp.cp_only - hp.l1000_only), ("cp", hp.cp_only),
                                    ("l1000", hp.l1000_only)) if w > 0]

    def step(self, model, batch, device):
        """Reconstruction loss of both profiles from this batch's input case(s)."""
        t_cp, t_l = model.norm_cp(_t(batch["cp"], device)), model.norm_l1000(_t(batch["l1000"], device))
        if model.training:
            u = torch.rand(t_cp.shape[0], 1, device=t_cp.device)
            keep_l = (u >= self.hp.cp_only).to(t_cp.dtype)  # cp-only samples lose their L1000 input
            keep_cp = 1.0 - ((u >= self.hp.cp_only) & (u < self.hp.cp_only + self.hp.l1000_only)).to(t_cp.dtype)
            inputs = [(t_cp * keep_cp, t_l * keep_l, 1.0)]
        else:
            zero_cp, zero_l = torch.zeros_like(t_cp), torch.zeros_like(t_l)
            given = {"both": (t_cp, t_l), "cp": (t_cp, zero_l), "l1000": (zero_cp, t_l)}
            inputs = [(*given[c], w) for c, w in self.cases()]
        rec_cp = rec_l = 0.0
        for x_cp, x_l, w in inputs:
            r_cp, r_l = model.decode(model.embed(x_cp, x_l))
            rec_cp = rec_cp + w * torch.nn.functional.mse_loss(r_cp.float(), t_cp.float())
            rec_l = rec_l + w * torch.nn.functional.mse_loss(r_l.float(), t_l.float())
        return {"loss": rec_cp + rec_l, "reconstruction_cp": rec_cp, "reconstruction_l1000": rec_l}

    def encode(self, model, view, arrays, device):
        """The shared-layer embedding from the modalities ``view`` names (the other one zeroed)."""
        cp = _t(arrays["cp"], device) if view in ("cp", "both") else None
        l1000 = _t(arrays["l1000"], device) if view in ("l1000", "both") else None
        return model.encode(cp, l1000)


CLASSES = {"supcon": SupCon, "translator": Translator, "vae": VAE, "contrastive": Contrastive, "bimodal_ae": BimodalAE}


def family_of(hp, clip: float = 10.0) -> Family:
    """The :class:`Family` object of resolved hyperparameters ``hp`` (by ``hp.family``)."""
    return CLASSES[hp.family](hp, clip)
