"""Resolved hyperparameters of every model family and of the shared trainer.

The config schema (``workflow/schemas/config.schema.yaml``, ``$defs``) documents and validates the
same keys with the same defaults; ``tests/test_models.py`` checks that the two agree. The trainer's
settings (``train:``) are :class:`morphotx.settings.TrainSettings`, with every other section's.
A model in ``config.yaml`` is ``models.<name>: {family: <family>, ...}``; keys left out take the
defaults below.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from ..io import MorphotxInputError
from ..settings import TrainSettings, build

FORMAT_VERSION = 1


@dataclass
class SupConHP:
    """Saha 2025 late fusion. ``input_noise``, ``feature_dropout`` and ``weight_decay`` (1e-2,
    AdamW's common default) are regularisation choices for generalisation to unseen compounds,
    not tuned on the demo (``tune`` searches them).
    """

    family: str = "supcon"
    unit: str = "pairs"  # pairs | collapsed
    hidden: int = 512
    head_dim: int = 256
    fusion_hidden: int = 256
    embedding_dim: int = 128
    dropout: float = 0.2
    temperature: float = 0.1
    positives: str = "all"  # all (Khosla et al.) | other_compounds (the anchor's own compound left out)
    modality_dropout: float = 0.2
    moas_per_batch: int = 16
    per_moa: int = 8
    input_noise: float = 0.1  # sd of Gaussian noise on the standardised inputs (training only)
    feature_dropout: float = 0.1  # probability of zeroing a standardised input feature (training only)
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-2
    max_epochs: int | None = None


@dataclass
class TranslatorHP:
    """Saha 2025 L1000 → Cell Painting translator, as the study (no input augmentation by default)."""

    family: str = "translator"
    unit: str = "pairs"  # pairs | collapsed
    hidden: int = 128
    dropout: float = 0.2
    embedding: str = "output"  # output (predicted Cell Painting profile, as the study) | hidden
    batch_size: int = 256
    input_noise: float = 0.0
    feature_dropout: float = 0.0
    lr: float = 1.0e-3
    weight_decay: float = 0.0
    max_epochs: int | None = None


@dataclass
class VAEHP:
    """Chow 2022 VAEs (vanilla, β-VAE, MMD-VAE) of Cell Painting, L1000 or their concatenation."""

    family: str = "vae"
    variant: str = "vanilla"  # vanilla | beta | mmd
    input: str = "cp"  # cp | l1000 | concat
    unit: str = "auto"  # auto (replicates for one modality, pairs for concat) | replicates | pairs | collapsed
    hidden: int | str = "auto"  # auto: 250 Cell Painting, 500 L1000, 750 concatenation (Chow 2022)
    latent_dim: int = 10
    batch_norm: bool = True
    input_scale: str = "zscore"  # zscore | minmax (Chow 2022's 0–1 scaling, fitted on the training rows)
    shuffle_features: bool = False  # Chow 2022's shuffled control: every feature permuted across rows
    beta: float = 1.0  # KL weight; used by the beta variant (vanilla is β = 1)
    mmd_lambda: float = 1000.0  # MMD weight of the mmd variant
    mmd_bandwidth: float | None = None  # Gaussian kernel bandwidth; null: d² (Chow 2022's kernel; d for InfoVAE's)
    batch_size: int = 128
    lr: float = 1.0e-3
    weight_decay: float = 0.0
    max_epochs: int | None = None


@dataclass
class ContrastiveHP:
    """Lu 2025 CLIP / CWCL. ``dropout`` 0.2, ``input_noise``, ``feature_dropout`` and
    ``weight_decay`` 1e-2 (AdamW's common default) are regularisation choices for generalisation to
    unseen compounds, not tuned on the demo (``tune`` searches them).
    """

    family: str = "contrastive"
    loss: str = "clip"  # clip | cwcl
    unit: str = "pairs"  # pairs | collapsed | sets
    pooling: str = "gated_attention"  # gated_attention | mean (sets)
    embedding: str = "projection"  # projection (the aligned, L2-normalised space) | hidden (before the projection)
    hidden: int = 512
    embedding_dim: int = 128
    attention_dim: int = 128
    dropout: float = 0.2
    logit_scale_init: float = 14.3
    learn_temperature: bool = True
    max_logit_scale: float = 100.0
    batch_size: int = 128
    input_noise: float = 0.1
    feature_dropout: float = 0.1
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-2
    max_epochs: int | None = None


@dataclass
class BimodalAEHP:
    """Ha 2025's bimodal autoencoder in the cross-modality setting (Ngiam et al. 2011's bimodal
    deep autoencoder): a Cell Painting and an L1000 encoder feed one shared layer (the embedding),
    from which both modalities are reconstructed. A fraction ``cp_only`` of the training samples
    has its L1000 input zeroed (and ``l1000_only`` its Cell Painting input), so the shared layer
    learns to embed — and reconstruct both modalities — from Cell Painting alone: the ``cp`` view
    for new compounds. Layer sizes, dropout and the thirds are morphotx's choices (Ha 2025's text
    gives none of them).
    """

    family: str = "bimodal_ae"
    unit: str = "collapsed"  # pairs | collapsed
    hidden: int = 256  # each modality's encoder (and decoder) hidden layer
    latent_dim: int = 64  # the shared layer: the embedding
    dropout: float = 0.1
    cp_only: float = 0.33  # fraction of training samples with the L1000 input zeroed
    l1000_only: float = 0.33  # fraction with the Cell Painting input zeroed
    batch_size: int = 64
    lr: float = 1.0e-3
    weight_decay: float = 0.0
    max_epochs: int | None = None


FAMILIES = {"supcon": SupConHP, "translator": TranslatorHP, "vae": VAEHP, "contrastive": ContrastiveHP,
            "bimodal_ae": BimodalAEHP}
CHOICES = {
    ("supcon", "unit"): ("pairs", "collapsed"),
    ("translator", "unit"): ("pairs", "collapsed"),
    ("translator", "embedding"): ("output", "hidden"),
    ("vae", "variant"): ("vanilla", "beta", "mmd"),
    ("vae", "input"): ("cp", "l1000", "concat"),
    ("vae", "input_scale"): ("zscore", "minmax"),
    ("vae", "unit"): ("auto", "replicates", "pairs", "collapsed", "sets"),
    ("contrastive", "loss"): ("clip", "cwcl"),
    ("contrastive", "unit"): ("pairs", "collapsed", "sets"),
    ("contrastive", "pooling"): ("gated_attention", "mean"),
    ("contrastive", "embedding"): ("projection", "hidden"),
    ("bimodal_ae", "unit"): ("pairs", "collapsed"),
}


def with_tuned(name: str, model_cfg: dict, tuned: str | None = None) -> dict:
    """``model_cfg`` with the hyperparameters of a split's ``tune`` result applied.

    Parameters
    ----------
    name : str
        The model (its entry under ``models:`` in ``tuned``).
    model_cfg : dict
        The configured ``models.<name>`` entry.
    tuned : str, optional
        A ``best.yaml`` written by :func:`morphotx.models.tune.tune` for this split (``tune.apply``);
        None: ``model_cfg`` unchanged.

    Returns
    -------
    dict
        The configuration the split's model trains (and is embedded) with.
    """
    if not tuned:
        return dict(model_cfg)
    from pathlib import Path

    import yaml

    doc = yaml.safe_load(Path(tuned).read_text()) or {}
    best = (doc.get("models") or {}).get(name)
    if not isinstance(best, dict):
        raise MorphotxInputError(f"{tuned}: no models.{name} entry; rerun the search (snakemake tune_all)")
    return {**model_cfg, **best}


def resolve(name: str, cfg: dict) -> object:
    """The hyperparameter dataclass of model ``name`` from its config mapping (defaults filled).
    Errors name the key ``models.<name>.<key>``.

    Parameters
    ----------
    name : str
        The model's name in ``models`` (named in errors).
    cfg : dict
        Its config entry: ``family`` and any hyperparameters of that family.
    """
    family = (cfg or {}).get("family")
    if family not in FAMILIES:
        raise MorphotxInputError(f"models.{name}.family is {family!r}; expected one of {sorted(FAMILIES)}")
    cls = FAMILIES[family]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(cfg) - known - {"enabled"})
    if unknown:
        raise MorphotxInputError(f"models.{name}: unknown key(s) {unknown} for family {family}; "
                                 f"known keys: {sorted(known)}")
    hp = cls(**{k: v for k, v in cfg.items() if k in known})
    for (fam, key), allowed in CHOICES.items():
        if (fam, key) == ("contrastive", "pooling") and hp.unit != "sets":
            allowed = (*allowed, "none")  # what resolve stores for non-set units (read back from checkpoints)
        if fam == family and getattr(hp, key) not in allowed:
            raise MorphotxInputError(f"models.{name}.{key} is {getattr(hp, key)!r}; expected one of {list(allowed)}")
    if family == "vae":
        if hp.unit == "auto":
            hp.unit = "pairs" if hp.input == "concat" else "replicates"
        if hp.unit == "replicates" and hp.input == "concat":
            raise MorphotxInputError(f"models.{name}.unit: 'replicates' needs one modality; input 'concat' "
                                     "trains on pairs or collapsed")
        if hp.unit == "sets":
            raise MorphotxInputError(f"models.{name}.unit: VAEs do not pool sets; use replicates, pairs or collapsed")
        if hp.unit == "pairs" and hp.input != "concat":
            raise MorphotxInputError(f"models.{name}.unit: 'pairs' is for input 'concat'; a one-modality VAE "
                                     "trains on replicates or collapsed")
        if hp.hidden == "auto":
            hp.hidden = {"cp": 250, "l1000": 500, "concat": 750}[hp.input]
        if hp.variant == "vanilla":
            hp.beta = 1.0
    if family == "contrastive" and hp.unit != "sets":
        hp.pooling = "none"
    if family == "bimodal_ae":
        for key in ("cp_only", "l1000_only"):
            if not 0.0 <= getattr(hp, key) <= 1.0:
                raise MorphotxInputError(f"models.{name}.{key} is {getattr(hp, key)!r}; expected a fraction in [0, 1]")
        if hp.cp_only + hp.l1000_only > 1.0:
            raise MorphotxInputError(f"models.{name}: cp_only + l1000_only is {hp.cp_only + hp.l1000_only:g}; "
                                     "the two fractions of one-modality training samples must sum to at most 1")
    return hp


def resolve_train(cfg: dict | None) -> TrainSettings:
    """The trainer settings from the ``train`` config mapping (defaults filled); errors name the key."""
    return build(TrainSettings, cfg, "train")  # unknown keys and choices are checked there


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
