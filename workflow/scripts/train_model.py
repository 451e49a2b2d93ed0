from morphotx.models import train_model
from morphotx.smk import run

run(snakemake, train_model)  # noqa: F821 (injected by Snakemake)
