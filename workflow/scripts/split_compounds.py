from morphotx.prepare.split import split_compounds
from morphotx.smk import run

run(snakemake, split_compounds)  # noqa: F821 (injected by Snakemake)
