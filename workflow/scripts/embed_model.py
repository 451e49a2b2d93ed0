from morphotx.models import embed_model
from morphotx.smk import run

run(snakemake, embed_model)  # noqa: F821 (injected by Snakemake)
