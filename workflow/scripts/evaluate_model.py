from morphotx.evaluate.jobs import evaluate_model
from morphotx.smk import run

run(snakemake, evaluate_model)  # noqa: F821 (injected by Snakemake)
