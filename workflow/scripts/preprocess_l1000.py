from morphotx.prepare.preprocess import preprocess_l1000
from morphotx.smk import run

run(snakemake, preprocess_l1000)  # noqa: F821 (injected by Snakemake)
