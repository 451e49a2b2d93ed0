"""Resolved hyperparameters of every model family.

Each family's hyperparameters are a frozen dataclass (choices as ``Literal`` types; the optimiser's
learning rate, weight decay, batch size and epoch limit in the shared bases :class:`ModelHP` and
:class:`BatchedHP`), built from the config by :func:`morphotx.settings.build` like every config
section. The config schema (``workflow/schemas/config.schema.yaml``, ``$defs``) documents and
validates the same keys with the same defaults and choices; ``tests/test_models.py`` checks that
the two agree. The trainer's settings (``train:``) are :class:`morphotx.settings.TrainSettings`.
A model in ``config.yaml`` is ``models.<name>: {family: <family>, ...}``; keys left out take the
defaults below. The workflow resolves every enabled model once at start-up (``HP`` in
``workflow/rules/common.smk``) and passes the resolved dataclass to its jobs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

from ..io import MorphotxInputError
from ..settings import TrainSettings, build

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelHP:
    """What every family's hyperparameters share: the optimiser's (AdamW) learning rate and weight
    decay, and an epoch limit of the model's own (None: ``train.max_epochs``).
    """

    lr: float = 1.0e-3
    weight_decay: float = 0.0
    max_epochs: int | None = None


@dataclass(frozen=True)
class BatchedHP(ModelHP):
    """A family that draws plain mini-batches of ``batch_size`` training units (SupCon draws its
    own, MoA-balanced ones).
    """

    batch_size: int = 128


@dataclass(frozen=True)
class SupConHP(ModelHP):
    """Saha 2025 late fusion. ``input_noise``, ``feature_dropout`` and ``weight_decay`` (1e-2,
    AdamW's common default) are regularisation choices for generalisation to unseen compounds,
    not tuned on the demo (``tune`` searches them).
    """

    family: Literal["supcon"] = "supcon"
    unit: Literal["pairs", "collapsed"] = "pairs"
    hidden: int = 512
    head_dim: int = 256
    fusion_hidden: int = 256
    embedding_dim: int = 128
    dropout: float = 0.2
    temperature: float = 0.1
    # all (Khosla et al.) | other_compounds (the anchor's own compound left out)
    positives: Literal["all", "other_compounds"] = "all"
    modality_dropout: float = 0.2
    moas_per_batch: int = 16
    per_moa: int = 8
    input_noise: float = 0.1  # sd of Gaussian noise on the standardised inputs (training only)
    feature_dropout: float = 0.1  # probability of zeroing a standardised input feature (training only)
    weight_decay: float = 1.0e-2


@dataclass(frozen=True)
class TranslatorHP(BatchedHP):
    """Saha 2025 L1000 → Cell Painting translator, as the study (no input augmentation by default)."""

    family: Literal["translator"] = "translator"
    unit: Literal["pairs", "collapsed"] = "pairs"
    hidden: int = 128
    dropout: float = 0.2
    # output (predicted Cell Painting profile, as the study) | hidden
    embedding: Literal["output", "hidden"] = "output"
    batch_size: int = 256
    input_noise: float = 0.0
    feature_dropout: float = 0.0


@dataclass(frozen=True)
class VAEHP(BatchedHP):
    """Chow 2022 VAEs (vanilla, β-VAE, MMD-VAE) of Cell Painting, L1000 or their concatenation."""

    family: Literal["vae"] = "vae"
    variant: Literal["vanilla", "beta", "mmd"] = "vanilla"
    input: Literal["cp", "l1000", "concat"] = "cp"
    # auto: replicates for one modality, pairs for concat (resolve fills it in)
    unit: Literal["auto", "replicates", "pairs", "collapsed"] = "auto"
    hidden: int | str = "auto"  # auto: 250 Cell Painting, 500 L1000, 750 concatenation (Chow 2022)
    latent_dim: int = 10
    batch_norm: bool = True
    # zscore | minmax (Chow 2022's 0–1 scaling, fitted on the training rows)
    input_scale: Literal["zscore", "minmax"] = "zscore"
    shuffle_features: bool = False  # Chow 2022's shuffled control: every feature permuted across rows
    beta: float = 1.0  # KL weight; used by the beta variant (vanilla is β = 1)
    mmd_lambda: float = 1000.0  # MMD weight of the mmd variant
    mmd_bandwidth: float | None = None  # Gaussian kernel bandwidth; null: d² (Chow 2022's kernel; d for InfoVAE's)


@dataclass(frozen=True)
class ContrastiveHP(BatchedHP):
    """Lu 2025 CLIP / CWCL. ``dropout`` 0.2, ``input_noise``, ``feature_dropout`` and
    ``weight_decay`` 1e-2 (AdamW's common default) are regularisation choices for generalisation to
    unseen compounds, not tuned on the demo (``tune`` searches them).
    """

    family: Literal["contrastive"] = "contrastive"
    loss: Literal["clip", "cwcl"] = "clip"
    unit: Literal["pairs", "collapsed", "sets"] = "pairs"
    # gated_attention | mean, for sets; resolve stores none for the other units
    pooling: Literal["gated_attention", "mean", "none"] = "gated_attention"
    # projection (the aligned, L2-normalised space) | hidden (before the projection)
    embedding: Literal["projection", "hidden"] = "projection"
    hidden: int = 512
    embedding_dim: int = 128
    attention_dim: int = 128
    dropout: float = 0.2
    logit_scale_init: float = 14.3
    learn_temperature: bool = True
    max_logit_scale: float = 100.0
    input_noise: float = 0.1
    feature_dropout: float = 0.1
    weight_decay: float = 1.0e-2


@dataclass(frozen=True)
class BimodalAEHP(BatchedHP):
    """Ha 2025's bimodal autoencoder in the cross-modality setting (Ngiam et al. 2011's bimodal
    deep autoencoder): a Cell Painting and an L1000 encoder feed one shared layer (the embedding),
    from which both modalities are reconstructed. A fraction ``cp_only`` of the training samples
    has its L1000 input zeroed (and ``l1000_only`` its Cell Painting input), so the shared layer
    learns to embed — and reconstruct both modalities — from Cell Painting alone: the ``cp`` view
    for new compounds. Layer sizes, dropout and the thirds are morphotx's choices (Ha 2025's text
    gives none of them).
    """

    family: Literal["bimodal_ae"] = "bimodal_ae"
    unit: Literal["pairs", "collapsed"] = "collapsed"
    hidden: int = 256  # each modality's encoder (and decoder) hidden layer
    latent_dim: int = 64  # the shared layer: the embedding
    dropout: float = 0.1
    cp_only: float = 0.33  # fraction of training samples with the L1000 input zeroed
    l1000_only: float = 0.33  # fraction with the Cell Painting input zeroed
    batch_size: int = 64


# the hyperparameters of any family (what :func:`resolve` returns)
HyperParameters = SupConHP | TranslatorHP | VAEHP | ContrastiveHP | BimodalAEHP

FAMILIES = {"supcon": SupConHP, "translator": TranslatorHP, "vae": VAEHP, "contrastive": ContrastiveHP,
            "bimodal_ae": BimodalAEHP}


def with_tuned(name: str, hp: HyperParameters, tuned: str | None = None) -> HyperParameters:
    """``hp`` with the hyperparameters of a split's ``tune`` result applied.

    Parameters
    ----------
    name : str
        The model (its entry under ``models:`` in ``tuned``).
    hp : object
        The model's configured hyperparameters (:func:`resolve`).
    tuned : str, optional
        A ``best.yaml`` written by :func:`morphotx.models.tune.tune` for this split (``tune.apply``);
        None: ``hp`` unchanged.

    Returns
    -------
    object
        The hyperparameters the split's model trains (and is embedded) with, checked as the
        config's are.
    """
    if not tuned:
        return hp
    from pathlib import Path

    import yaml

    doc = yaml.safe_load(Path(tuned).read_text()) or {}
    best = (doc.get("models") or {}).get(name)
    if not isinstance(best, dict):
        raise MorphotxInputError(f"{tuned}: no models.{name} entry; rerun the search (snakemake tune_all)")
    return with_overrides(name, hp, best)


def with_overrides(name: str, hp: HyperParameters, overrides: dict) -> HyperParameters:
    """``hp`` (resolved) with ``overrides`` applied and checked again as by :func:`resolve` (an
    Optuna trial's suggestions, a split's tuned values). Values :func:`resolve` filled in (a VAE's
    ``hidden`` and ``unit``, a contrastive model's ``pooling``) stay as resolved unless overridden.
    """
    return resolve(name, {**asdict(hp), **overrides})


def resolve(name: str, cfg: dict) -> HyperParameters:
    """The hyperparameters of model ``name`` from its config mapping: the family's dataclass with
    the defaults above for keys left out, ``auto`` values filled in and the cross-key rules checked.
    Unknown keys and values outside a setting's choices are errors naming ``models.<name>.<key>``
    (:func:`morphotx.settings.build`, as for every config section).

    Parameters
    ----------
    name : str
        The model's name in ``models`` (named in errors).
    cfg : dict
        Its config entry: ``family`` and any hyperparameters of that family (``enabled`` is the
        workflow's and is not a hyperparameter).
    """
    family = (cfg or {}).get("family")
    if family not in FAMILIES:
        raise MorphotxInputError(f"models.{name}.family is {family!r}; expected one of {sorted(FAMILIES)}")
    hp = build(FAMILIES[family], {k: v for k, v in cfg.items() if k != "enabled"}, f"models.{name}")
    if family == "vae":
        unit = hp.unit if hp.unit != "auto" else ("pairs" if hp.input == "concat" else "replicates")
        if unit == "replicates" and hp.input == "concat":
            raise MorphotxInputError(f"models.{name}.unit: 'replicates' needs one modality; input 'concat' "
                                     "trains on pairs or collapsed")
        if unit == "pairs" and hp.input != "concat":
            raise MorphotxInputError(f"models.{name}.unit: 'pairs' is for input 'concat'; a one-modality VAE "
                                     "trains on replicates or collapsed")
        hidden = {"cp": 250, "l1000": 500, "concat": 750}[hp.input] if hp.hidden == "auto" else hp.hidden
        hp = replace(hp, unit=unit, hidden=hidden, beta=1.0 if hp.variant == "vanilla" else hp.beta)
    if family == "contrastive":
        if hp.unit == "sets" and hp.pooling == "none":
            raise MorphotxInputError(f"models.{name}.pooling: unit 'sets' pools with gated_attention or mean")
        if hp.unit != "sets":
            hp = replace(hp, pooling="none")
    if family == "bimodal_ae":
        for key in ("cp_only", "l1000_only"):
            if not 0.0 <= getattr(hp, key) <= 1.0:
                raise MorphotxInputError(f"models.{name}.{key} is {getattr(hp, key)!r}; expected a fraction in [0, 1]")
        if hp.cp_only + hp.l1000_only > 1.0:
            raise MorphotxInputError(f"models.{name}: cp_only + l1000_only is {hp.cp_only + hp.l1000_only:g}; "
                                     "the two fractions of one-modality training samples must sum to at most 1")
    return hp


def views(hp) -> list[str]:
    """Embedding views a trained model writes, named by the input they need:
    ``both`` (Cell Painting + L1000), ``cp`` (Cell Painting only), ``l1000`` (L1000 only).

    Parameters
    ----------
    hp : object
        The model's hyperparameters (:func:`resolve`).
    """
    family = hp.family
    if family == "supcon":
        return ["both", "cp"]
    if family == "translator":
        return ["l1000"]
    if family == "vae":
        return [{"cp": "cp", "l1000": "l1000", "concat": "both"}[hp.input]]
    return ["both", "cp", "l1000"]  # contrastive, bimodal_ae


# Hyperparameters added after checkpoints existed, with the value that reproduces the earlier
# behaviour: left out of the fingerprint at that value, so those checkpoints stay valid.
ADDED_KEYS: dict[tuple[str, str], object] = {("contrastive", "embedding"): "projection"}


def fingerprint(hp, train: TrainSettings, features: dict[str, list[str]]) -> str:
    """Hash of what makes a checkpoint: family, hyperparameters, trainer settings that shape the
    weights, and the input feature names. A checkpoint whose fingerprint differs is refused.
    """
    shaping = {k: v for k, v in asdict(train).items() if k not in ("progress", "device", "seeds", "full_curve")}
    hps = {k: v for k, v in asdict(hp).items() if ADDED_KEYS.get((hp.family, k), object()) != v}
    blob = json.dumps({"v": FORMAT_VERSION, "hp": hps, "train": shaping, "features": features},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def primary_view(hp) -> str:
    """The view a model is scored on when ``evaluate.views`` is ``primary``: the joint embedding
    for two-modality models (supcon, contrastive, bimodal_ae), the translator's L1000-side output,
    a VAE's own input.

    Parameters
    ----------
    hp : object
        The model's hyperparameters (:func:`resolve`).
    """
    return ({"supcon": "both", "translator": "l1000", "contrastive": "both", "bimodal_ae": "both"}.get(hp.family)
            or views(hp)[0])
