"""Typed settings of every config section: one frozen dataclass per top-level key of the config.

Where defaults live: here, and in the schema ``workflow/schemas/config.schema.yaml``, which stays
the user-facing validator (Snakemake's ``validate`` fills its defaults in before any job starts).
``tests/test_settings.py`` fails when the two disagree on any key or default of any section, so a
default cannot drift; ``config/config.yaml`` only sets what a user changes. A new key needs a
schema entry and a field here (with the same default); the test names the one that is missing.

Choices are ``Literal`` types (the schema's ``enum``; the test compares them too). All sections
are in this one module (not beside the code that uses them) because several are read
by more than one module and by the workflow's rules, and so that the schema test walks one place.
The model families' hyperparameters (the entries of ``models``) are the dataclasses of
:mod:`morphotx.models.config`; they are checked against the schema's ``$defs`` the same way.

This module imports nothing heavy: the workflow builds :class:`Config` when it starts.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal

from .io import MorphotxInputError


def _list(*items):
    """A list default (a fresh list per instance)."""
    return field(default_factory=lambda: list(items))


def _dict(**items):
    """A dict default (a fresh, deep copy per instance)."""
    import copy

    return field(default_factory=lambda: copy.deepcopy(items))


def _section(cls):
    """A nested-section default: the class's own defaults."""
    return field(default_factory=cls)


@dataclass(frozen=True)
class DatasetSettings:
    """``dataset``: the run's name (``results/<name>/``), its input source and column map."""

    name: str
    source: Literal["demo", "files", "remote"] = "demo"
    format: str = "resources/datasets/lincs_pilot1.yaml"


@dataclass(frozen=True)
class InputSettings:
    """``inputs``: the input files when ``dataset.source`` is ``files``."""

    cell_painting: str | None = None
    l1000: str | None = None
    probe_map: str | None = None
    moa_map: str | None = None


@dataclass(frozen=True)
class DownloadSettings:
    """``download``: where remote inputs come from and how transfers retry (:mod:`morphotx.data.download`)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    retries: int = 5
    backoff_s: float = 2.0
    timeout_s: float = 60
    # 8: AWS CLI/boto3 default; 5: the S3 minimum; 15/16/64/100: other clients
    part_sizes_mib: list = _list(8, 5, 16, 15, 64, 100)
    progress: bool = True
    max_gib: float = 50  # byte limit of a download whose source gives no `size`
    sources: dict = _dict()


@dataclass(frozen=True)
class DemoSettings:
    """``demo``: the simulated inputs (:mod:`morphotx.data.demo`)."""

    scale: Literal["tiny", "demo", "lincs"] = "demo"
    seed: int = 7
    overrides: dict = _dict()


@dataclass(frozen=True)
class HarmoniseSettings:
    """``harmonise``: dose recoding and bad-value handling (:mod:`morphotx.data.harmonise`)."""

    doses_uM: list = _list(0.04, 0.12, 0.37, 1.11, 3.33, 10, 20)
    max_dose_fold: float = 10
    on_bad_dose: Literal["error", "drop"] = "error"
    on_extreme: Literal["error", "nan"] = "error"
    max_unknown_columns: float = 0.02


@dataclass(frozen=True)
class MoaSettings:
    """``moa``: where the MoA annotations come from."""

    source: Literal["file", "map"] = "file"
    map_key: str = "broad_id"
    map_column: str = "moa"


@dataclass(frozen=True)
class ProbeMapSettings:
    """``probe_map``: L1000 probe → gene mapping (:mod:`morphotx.data.probes`)."""

    probe_column: str = "probe_id"
    symbol_column: str = "symbol"
    duplicates: Literal["mean", "first"] = "mean"
    unmapped: Literal["drop", "keep"] = "drop"
    conflicts: Literal["error", "first"] = "error"
    max_unmapped: float = 0.1


@dataclass(frozen=True)
class SplitSettings:
    """``split``: the compound split and its repetitions (:mod:`morphotx.prepare.split`)."""

    seed: int = 0
    mode: Literal["compound", "moa_disjoint", "well_holdout"] = "compound"
    stratify: bool = True
    folds: int = 5
    repeats: int = 1
    fractions: dict = _dict(train=0.65, validation=0.15, test=0.2)


@dataclass(frozen=True)
class FeatureSelectSettings:
    """``preprocess.cell_painting.feature_select``: pycytominer feature selection."""

    operations: list = _list("drop_na_columns", "frequency_threshold", "variance_threshold",
                             "correlation_threshold", "blocklist")
    na_cutoff: float = 0.05
    freq_cut: float = 0.05
    unique_cut: float = 0.01
    min_variance: float = 1.0e-6
    corr_threshold: float = 0.9


@dataclass(frozen=True)
class NormalizeSettings:
    """``preprocess.cell_painting.normalize``: scaling against DMSO."""

    method: Literal["mad_robustize", "robustize", "standardize"] = "mad_robustize"
    by: Literal["plate", "global"] = "plate"


@dataclass(frozen=True)
class SphereSettings:
    """``preprocess.cell_painting.sphere``: sphering fitted on DMSO wells."""

    method: Literal["ZCA", "ZCA-cor", "PCA", "PCA-cor", "none"] = "ZCA"
    epsilon: float = 1.0e-6


@dataclass(frozen=True)
class CellPaintingPreprocessSettings:
    """``preprocess.cell_painting`` (:mod:`morphotx.prepare.preprocess`)."""

    recipe: Literal["standard", "study"] = "standard"
    drop_patterns: list | None = None  # None: preprocess's built-in non-intrinsic patterns
    feature_select: FeatureSelectSettings = _section(FeatureSelectSettings)
    normalize: NormalizeSettings = _section(NormalizeSettings)
    sphere: SphereSettings = _section(SphereSettings)
    # recipes chosen per split on validation compounds (morphotx.prepare.recipe_choice): {name: overrides}
    candidates: dict = _dict()
    choose_with: list = _list("knn")


@dataclass(frozen=True)
class L1000PreprocessSettings:
    """``preprocess.l1000``."""

    plate_standardise: Literal["none", "dmso", "all"] = "none"


@dataclass(frozen=True)
class PreprocessSettings:
    """``preprocess``: per-modality preprocessing."""

    cell_painting: CellPaintingPreprocessSettings = _section(CellPaintingPreprocessSettings)
    l1000: L1000PreprocessSettings = _section(L1000PreprocessSettings)


@dataclass(frozen=True)
class PairingSettings:
    """``pairing`` (:mod:`morphotx.prepare.pairing`)."""

    include_controls: bool = False


@dataclass(frozen=True)
class HeadlineSettings:
    """``headline``: the quoted result (:mod:`morphotx.report.headline`)."""

    metric: Literal["auto", "macro_f1", "accuracy", "weighted_f1", "moa_map"] = "auto"
    ci: Literal["corrected_t", "t"] = "corrected_t"
    confidence: float = 0.95
    bootstrap: int = 2000
    seed: int = 0
    delta: Literal["fold_t", "compound_bootstrap", "compound_split"] = "compound_split"
    resample: Literal["rescaled", "naive"] = "rescaled"


@dataclass(frozen=True)
class EvaluateSettings:
    """``evaluate``: scoring of every embedding (:mod:`morphotx.evaluate.jobs`). ``views`` and
    ``collapse`` are read by the rules (which jobs run, which embedding is written).
    """

    views: Literal["primary", "all"] = "primary"
    collapse: Literal["features", "embeddings"] = "features"
    classifiers: list = _list("knn", "mlp", "gmm", "logreg")
    variants: list = _list("uncollapsed", "collapsed", "raw+uncollapsed", "raw+collapsed")
    knn_k_max: int = 100
    knn_k_selection: Literal["validation", "cv"] = "validation"
    logreg_c: list = _list(1.0, 10.0, 100.0, 1000.0)
    cv_folds: int = 5
    low_dim_max: int = 32
    same_compound: Literal["exclude", "include"] = "exclude"
    min_compounds_per_moa: int = 2
    curve_k_max: int = 100
    map_null_size: int = 10000
    map_threshold: float = 0.05
    replicating_null_size: int = 1000
    replicate_negatives: Literal["plate", "all"] = "plate"
    moaprofiler_dmso: Literal["none", "plate"] = "none"
    moaprofiler_dose_uM: float | None = None
    recall_k: list = _list(1, 5, 10)
    uncollapsed_pairs: Literal["cyclic", "all"] = "cyclic"
    batch_correction: Literal["none", "tvn"] = "none"


@dataclass(frozen=True)
class ArithmeticSettings:
    """``arithmetic``: Chow 2022's latent arithmetic of the VAEs (A − DMSO + B against the real
    A∩B, with ``shuffles`` label-shuffled controls and a ``pca_components`` PCA baseline) and their
    latent traversals (:mod:`morphotx.evaluate.arithmetic`).
    """

    shuffles: int = 10
    pca_components: int = 10
    traversal_sd: float = 3.0
    traversal_scale: Literal["prior", "empirical"] = "prior"
    traversal_difference: Literal["absolute", "signed"] = "absolute"


@dataclass(frozen=True)
class ReconstructionSettings:
    """``reconstruction``: held-out reconstruction of the translator and the VAEs
    (:mod:`morphotx.evaluate.reconstruction`); ``shuffled_control``: Chow 2022's feature-permuted VAE beside
    each VAE.
    """

    shuffled_control: bool = True


@dataclass(frozen=True)
class FigureSettings:
    """``figures``: the embedding maps' seed and parameters (:mod:`morphotx.report.figures`)."""

    seed: int = 0
    umap_neighbors: int = 15
    tsne_perplexity: float = 30


@dataclass(frozen=True)
class JobResources:
    """Memory (MB), runtime (min) and optional SLURM partition of one class of job."""

    mem_mb: int
    runtime: int
    slurm_partition: str | None = None


@dataclass(frozen=True)
class ResourceSettings:
    """``resources``: what each class of job requests (cluster placement)."""

    default: JobResources = field(default_factory=lambda: JobResources(mem_mb=2000, runtime=20))
    heavy: JobResources = field(default_factory=lambda: JobResources(mem_mb=8000, runtime=120))
    train: JobResources = field(default_factory=lambda: JobResources(mem_mb=8000, runtime=240))
    evaluate: JobResources = field(default_factory=lambda: JobResources(mem_mb=8000, runtime=120))


@dataclass(frozen=True)
class ThreadSettings:
    """``threads``: threads per class of job: ``default`` (light rules), ``heavy`` (preprocessing
    and scoring rules), ``train`` (each training job: torch intra-op threads), ``evaluate`` (each
    evaluation job: worker processes for its tables, :func:`morphotx.evaluate.jobs.evaluate_tables`).
    """

    default: int = 1
    heavy: int = 2
    train: int = 1
    evaluate: int = 1


@dataclass(frozen=True)
class TrainSettings:
    """``train``: the one trainer shared by every model (:mod:`morphotx.models.train`)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: bool = False  # bf16 autocast on CUDA only
    seeds: list = _list(0)
    max_epochs: int = 60
    patience: int = 8
    min_delta: float = 0.0
    input_clip: float = 10.0
    select_on: Literal["downstream", "loss"] = "downstream"  # downstream: validation MoA mAP
    progress: bool = True
    full_curve: bool = False  # train on to max_epochs for the loss curve; the checkpoint stays early stopping's


@dataclass(frozen=True)
class TuneSettings:
    """``tune``: the Optuna search (:mod:`morphotx.models.tune`); ``space`` per model family."""

    apply: bool = False
    seed: int = 0
    n_trials: int = 20
    max_epochs: int = 30
    models: list = _list("supcon", "clip", "set_clip", "translator", "vae_beta_cp")
    space: dict = _dict(
        supcon={"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True},
                "weight_decay": {"low": 1.0e-5, "high": 1.0e-1, "log": True},
                "dropout": {"low": 0.0, "high": 0.5}, "input_noise": {"low": 0.0, "high": 0.5},
                "feature_dropout": {"low": 0.0, "high": 0.3}, "embedding_dim": {"choices": [32, 64, 128]},
                "temperature": {"low": 0.05, "high": 0.5, "log": True}},
        contrastive={"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True},
                     "weight_decay": {"low": 1.0e-5, "high": 1.0e-1, "log": True},
                     "dropout": {"low": 0.0, "high": 0.5}, "input_noise": {"low": 0.0, "high": 0.5},
                     "feature_dropout": {"low": 0.0, "high": 0.3}, "embedding_dim": {"choices": [32, 64, 128]}},
        translator={"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True},
                    "weight_decay": {"low": 1.0e-6, "high": 1.0e-1, "log": True},
                    "dropout": {"low": 0.0, "high": 0.5}, "input_noise": {"low": 0.0, "high": 0.5},
                    "feature_dropout": {"low": 0.0, "high": 0.3}, "hidden": {"choices": [64, 128, 256]}},
        vae={"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True},
             "weight_decay": {"low": 1.0e-6, "high": 1.0e-2, "log": True},
             "latent_dim": {"choices": [5, 10, 20, 32]}, "beta": {"low": 0.1, "high": 50.0, "log": True},
             "mmd_lambda": {"low": 10.0, "high": 1.0e4, "log": True}},
        bimodal_ae={"lr": {"low": 1.0e-4, "high": 3.0e-3, "log": True},
                    "weight_decay": {"low": 1.0e-6, "high": 1.0e-2, "log": True},
                    "dropout": {"low": 0.0, "high": 0.5}, "latent_dim": {"choices": [16, 32, 64, 128]},
                    "cp_only": {"low": 0.1, "high": 0.5}},
    )


@dataclass(frozen=True)
class Config:
    """The whole config, one field per section. ``models`` stays a mapping ``name -> entry``; each
    entry is resolved by :func:`morphotx.models.resolve`.
    """

    dataset: DatasetSettings
    inputs: InputSettings = _section(InputSettings)
    download: DownloadSettings = _section(DownloadSettings)
    demo: DemoSettings = _section(DemoSettings)
    harmonise: HarmoniseSettings = _section(HarmoniseSettings)
    moa: MoaSettings = _section(MoaSettings)
    probe_map: ProbeMapSettings = _section(ProbeMapSettings)
    split: SplitSettings = _section(SplitSettings)
    preprocess: PreprocessSettings = _section(PreprocessSettings)
    pairing: PairingSettings = _section(PairingSettings)
    headline: HeadlineSettings = _section(HeadlineSettings)
    evaluate: EvaluateSettings = _section(EvaluateSettings)
    arithmetic: ArithmeticSettings = _section(ArithmeticSettings)
    reconstruction: ReconstructionSettings = _section(ReconstructionSettings)
    figures: FigureSettings = _section(FigureSettings)
    resources: ResourceSettings = _section(ResourceSettings)
    threads: ThreadSettings = _section(ThreadSettings)
    train: TrainSettings = _section(TrainSettings)
    tune: TuneSettings = _section(TuneSettings)
    models: dict = _dict()


def nested_section(cls: type, name: str) -> type | None:
    """The dataclass type of field ``name`` of ``cls`` when it is a nested section, else None."""
    hint = typing.get_type_hints(cls)[name]
    return hint if is_dataclass(hint) else None


def field_default(f: Field) -> Any:
    """The default of a dataclass field (``MISSING`` when it has none)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def build(cls: type, cfg: dict | None, where: str, base: Any = None):
    """Settings ``cls`` from a config mapping: keys left out keep their defaults (those of ``base``,
    an instance, when given), nested sections are built the same way. A key ``cls`` does not know
    is an error naming ``where.<key>`` (a key in the schema but not here: add the field), and so is
    a value outside a ``Literal`` field's choices.
    """
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise MorphotxInputError(f"config key {where} is {cfg!r}; expected a mapping of settings")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise MorphotxInputError(
            f"config section {where}: unknown key(s) {unknown}; known keys: {sorted(known)}. "
            f"(A key the schema knows needs a field in morphotx.settings.{cls.__name__} too.)")
    values = {}
    hints = typing.get_type_hints(cls)
    for name, value in cfg.items():
        choices = typing.get_args(hints[name]) if typing.get_origin(hints[name]) is Literal else ()
        if choices and value not in choices:
            raise MorphotxInputError(f"config key {where}.{name} is {value!r}; expected one of {list(choices)}")
        sub = nested_section(cls, name)
        if sub is not None:
            inner = getattr(base, name) if base is not None else field_default(known[name])
            value = build(sub, value, f"{where}.{name}", None if inner is MISSING else inner)
        values[name] = value
    if base is not None:
        return replace(base, **values)
    missing = [n for n, f in known.items() if n not in values and field_default(f) is MISSING]
    if missing:
        raise MorphotxInputError(f"config key(s) {[f'{where}.{n}' for n in missing]} missing; set them "
                                 "(the schema, workflow/schemas/config.schema.yaml, describes each)")
    return cls(**values)


def load(config: dict) -> Config:
    """The typed settings of a (validated) config mapping; errors name the section and key.

    Parameters
    ----------
    config : dict
        The config mapping, already validated against the schema.
    """
    return build(Config, config, "config")
