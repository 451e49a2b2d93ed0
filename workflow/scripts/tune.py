from morphotx.models.tune import tune
from morphotx.smk import run

run(snakemake, tune)  # noqa: F821 (injected by Snakemake)
