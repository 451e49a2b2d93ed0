from morphotx.evaluate.jobs import evaluate_raw
from morphotx.smk import run

run(snakemake, evaluate_raw)  # noqa: F821 (injected by Snakemake)
