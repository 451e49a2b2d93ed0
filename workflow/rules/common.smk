import sys
from dataclasses import asdict, replace

# Paths and small helpers shared by the rules. No data logic here: it lives in src/morphotx/.
OUT = f"results/{config['dataset']['name']}"
LOGS = f"{OUT}/logs"
BENCH = f"{OUT}/benchmarks"
# one conda env per stage (`--sdm conda`); envs/morphotx.yaml is the same packages in one env
ENVS = {
    g: f"../envs/{g}.yaml"
    for g in ["data", "preprocess", "train", "evaluate", "figures"]
}
MODALITY = {"cp": "cell_painting", "l1000": "l1000"}


def repo_path(path):
    """A repository file (e.g. resources/datasets/*.yaml) when not found from the working dir."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(workflow.basedir, "..", path)


FORMAT = repo_path(config["dataset"]["format"])

# config checks that need no data: stop before any job
from morphotx.configcheck import check_split_config, resolve_headline_metric
from morphotx.smk import SETTINGS_REPR, stop_on_bad_input

with stop_on_bad_input("configuration"):
    check_split_config(config["split"])
    config["headline"]["metric"] = resolve_headline_metric(
        config["headline"]["metric"], config["split"]["mode"]
    )

# the typed settings of every section (src/morphotx/settings.py; the schema filled the defaults)
from morphotx.settings import load as load_settings

SETTINGS = load_settings(config)

# Rules pass these typed settings to their jobs (params: **typed_params(...)); Snakemake pickles
# params into each job and unpickles them before the script's first line, so the jobs, in the
# project venv or a stage's conda env alike, get this checkout's src/ on PYTHONPATH.
SRC = os.path.abspath(os.path.join(workflow.basedir, "..", "src"))
_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
os.environ.update(
    PYTHONPATH=os.pathsep.join([SRC] + [p for p in _paths if p and p != SRC])
)


def typed_params(**settings):
    """A rule's ``params`` holding typed settings (settings sections, model hyperparameters; a
    value may be a function of the wildcards), plus ``settings_repr``, their repr: Snakemake's
    params rerun-trigger compares builtin values only and would skip a dataclass, so a changed
    setting reruns the job through that string (``morphotx.smk`` does not pass it on).
    """

    def text(wildcards):
        return repr(
            {k: v(wildcards) if callable(v) else v for k, v in sorted(settings.items())}
        )

    return {**settings, SETTINGS_REPR: text}


THREADS = SETTINGS.threads.default
HEAVY = SETTINGS.threads.heavy
EVAL_THREADS = SETTINGS.threads.evaluate
# memory, runtime and optional partition per class of job (config key `resources`), as given to
# Snakemake's `resources:` (a partition that is not set is left out)
RES = {
    name: {
        k: v
        for k, v in asdict(getattr(SETTINGS.resources, name)).items()
        if v is not None
    }
    for name in ("default", "heavy", "train", "evaluate")
}

# the code that runs (the manifest rule reruns when it changes)
from morphotx.report.manifest import git_state

GIT = git_state(workflow.basedir)

# raw inputs: simulated under results/<name>/raw/ for the demo, the configured files otherwise
DEMO_RAW = {
    "cell_painting": f"{OUT}/raw/CellPainting/replicate_level_cp_augmented.csv.gz",
    "l1000": f"{OUT}/raw/L1000/replicate_level_l1k.csv.gz",
    "probe_map": f"{OUT}/raw/probe_map.tsv",
    "moa_map": f"{OUT}/raw/moa_map.tsv",
    "ground_truth": f"{OUT}/raw/ground_truth.parquet",
}


SOURCES = SETTINGS.download.sources


def download_path(key):
    """Where download.sources.<key> is saved (or linked, for a verified local copy)."""
    from morphotx.data.download import Source

    src = Source.from_config(key, SOURCES[key])
    return f"{OUT}/download/{key}/{src.output_name()}"


def raw_input(key):
    if SETTINGS.dataset.source == "demo":
        return DEMO_RAW[key]
    if SETTINGS.dataset.source == "remote":
        if key not in SOURCES:
            raise ValueError(
                f"config key download.sources.{key} is not set; dataset.source is 'remote', so add it "
                "(see config/lincs_pilot1.yaml)."
            )
        return download_path(key)
    path = getattr(SETTINGS.inputs, key)
    if not path:
        raise ValueError(
            f"config key inputs.{key} is not set; dataset.source is 'files', so name the file there."
        )
    return path


def moa_map_input():
    """The input slot ``moa_map`` where moa.source is ``map`` (none otherwise)."""
    return {"moa_map": raw_input("moa_map")} if SETTINGS.moa.source == "map" else {}


# models: the enabled ones, the embedding views each writes, and where their files go
from morphotx.models import primary_view, resolve as resolve_model, views as model_views

MODELS = {n: m for n, m in config["models"].items() if m.get("enabled", True)}
HP = {n: resolve_model(n, m) for n, m in MODELS.items()}
VIEWS = {n: model_views(hp) for n, hp in HP.items()}
VAES = [n for n, hp in HP.items() if hp.family == "vae"]
# models with a decoder, scored on how well they reproduce held-out profiles (rule reconstruction)
DECODERS = [n for n, hp in HP.items() if hp.family in ("vae", "translator")]
LEVELS = ["uncollapsed", "collapsed"]


# Job priorities (Snakemake starts the ready job of highest priority first; default 0). A long job
# started late ends a run alone, and on many cores small jobs taking the free cores ahead of long
# ones left cores idle (the H200 run in docs/benchmarks.md; on 2 cores the order measured no
# different), so: training and embedding first (they unlock everything downstream), with the
# embedding maps (ready only when every model is embedded), then evaluation, then the rest; within
# training and within evaluation the longest jobs first.
PRIORITY_UPSTREAM = 3
PRIORITY_EVALUATE = 1


def train_priority(wildcards):
    """SupCon and the contrastive models on replicate pairs train longest (5-10x the others on
    the demo): one above the other upstream jobs."""
    hp = HP[wildcards.model]
    heavy = hp.family in ("supcon", "contrastive") and hp.unit == "pairs"
    return PRIORITY_UPSTREAM + 1 if heavy else PRIORITY_UPSTREAM


def evaluate_priority(wildcards):
    """Models with a Cell Painting and an L1000 encoder are also scored per view, by the late fusion
    of their two views and by Recall@k: 2-4x the others' evaluation on the demo, so one above them.
    """
    two_encoders = {"cp", "l1000"} <= set(VIEWS[wildcards.model])
    return PRIORITY_EVALUATE + 1 if two_encoders else PRIORITY_EVALUATE


SEEDS = SETTINGS.train.seeds
# the headline's repetitions: split.repeats re-drawn partitions × split.folds compound-grouped folds;
# fold index f is fold f mod K of partition f // K (morphotx.prepare.split.fold_of). Training seeds are
# averaged within a fold, not counted as repetitions.
FOLDS = list(range(SETTINGS.split.repeats * SETTINGS.split.folds))
# trainer settings passed to the jobs; the seed list is left empty (each job's seed is its
# wildcard) so that adding a seed retrains nothing
TRAIN = replace(SETTINGS.train, seeds=[])
GPU = 1 if SETTINGS.train.device == "cuda" else 0
# the reconstruction job trains each VAE's shuffled control with the trainer's settings
# (reconstruction.shuffled_control), so it asks for what a training job asks for, the GPU included
# (with train.device: cuda; the translator's job then asks for one it does not use)
RECON_RES = (
    {**RES["train"], "gpu": GPU}
    if SETTINGS.reconstruction.shuffled_control
    else RES["evaluate"]
)


def per_fold(paths: dict, folds=FOLDS) -> dict:
    """``{f"{key}_fold{f}": path of fold f}`` for every path with a ``{fold}`` wildcard."""
    return {
        f"{k}_fold{f}": expand(v, fold=f)[0] for k, v in paths.items() for f in folds
    }


def embedding_files(name, fold, seed):
    return [
        f"{OUT}/embeddings/{name}/fold{fold}/seed{seed}/{v}_{l}.parquet"
        for v in VIEWS[name]
        for l in LEVELS
    ]


# evaluation: which views are scored, and the tables each evaluation job writes
EVAL_TABLES = [
    "classification",
    "per_moa",
    "embedding_metrics",
    "curves",
    "map",
    "predictions",
]
ARITH_TABLES = ["distances", "zscores", "traversal"]
# the validation compounds' MoA mAP is computed only when the headline selects on it
VALIDATION_MAP = SETTINGS.headline.metric == "moa_map"


def eval_views(name):
    """Views scored: every view (``all``), or the primary view plus the Cell-Painting-only view
    where the model has one (``primary``; Ha 2025's new-compound case)."""
    if SETTINGS.evaluate.views == "all":
        return VIEWS[name]
    return sorted({primary_view(HP[name])} | ({"cp"} & set(VIEWS[name])))


def evaluation_files(source, fold, seed):
    return {
        k: f"{OUT}/evaluation/{source}/fold{fold}/seed{seed}/{k}.parquet"
        for k in EVAL_TABLES
    }


def evaluation_outputs(source):
    """Every fold's evaluation tables of ``source`` (a model wildcard or ``raw``), one seed."""
    return {
        f"{k}_fold{f}": f"{OUT}/evaluation/{source}/fold{f}/seed{{seed}}/{k}.parquet"
        for f in FOLDS
        for k in EVAL_TABLES
    }


RECON_TABLES = ["reconstruction", "samples", "curves"]


def reconstruction_files(name, fold, seed):
    """Per-feature scores, per-sample scores (with the VAEs' shuffled control) and the loss
    curves of the model and its shuffled control."""
    return {
        k: f"{OUT}/reconstruction/{name}/fold{fold}/seed{seed}/{k}.parquet"
        for k in RECON_TABLES
    }


def arithmetic_files(name, fold, seed):
    return {
        k: f"{OUT}/arithmetic/{name}/fold{fold}/seed{seed}/{k}.parquet"
        for k in ARITH_TABLES
    }


def tune_targets(wildcards):
    """The trials tables of every model in tune.models (each must be an enabled model)."""
    unknown = [m for m in SETTINGS.tune.models if m not in MODELS]
    if unknown:
        raise ValueError(
            f"config key tune.models names {unknown}, which are not enabled models; "
            f"enabled: {sorted(MODELS)}"
        )
    return [
        f"{OUT}/tune/{m}/fold{fold}/{f}"
        for m in SETTINGS.tune.models
        for fold in FOLDS
        for f in ("trials.parquet", "trials.tsv")
    ]


def tuned_files(model):
    """``tuned_fold<f>``: split f's best.yaml of ``model``, with tune.apply and a tuned model."""
    if not SETTINGS.tune.apply or model not in SETTINGS.tune.models:
        return {}
    return {f"tuned_fold{f}": f"{OUT}/tune/{model}/fold{f}/best.yaml" for f in FOLDS}


def tuned_inputs(wildcards):
    """:func:`tuned_files` of the rule's ``model`` wildcard."""
    return tuned_files(wildcards.model)


def report_front_page():
    """The report's first page: workflow/report/workflow.rst, followed by the headline table when
    ``snakemake --report`` runs after the headline exists (written to results/<name>/report/).
    """
    static = os.path.join(workflow.basedir, "report/workflow.rst")
    headline = f"{OUT}/leaderboard/headline.parquet"
    if "--report" not in sys.argv or not os.path.exists(headline):
        return static
    import pandas as pd
    from morphotx.report.headline_text import front_page_rst

    path = os.path.abspath(
        f"{OUT}/report/front_page.rst"
    )  # report: resolves relative paths from the Snakefile
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(static) as fh:
        text = front_page_rst(pd.read_parquet(headline), fh.read())
    with open(path, "w") as fh:
        fh.write(text)
    return path
