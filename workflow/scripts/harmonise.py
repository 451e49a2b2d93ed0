from morphotx.data.harmonise import harmonise
from morphotx.smk import run

run(snakemake, harmonise)  # noqa: F821 (injected by Snakemake)
