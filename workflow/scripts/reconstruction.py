from morphotx.evaluate.reconstruction import reconstruction
from morphotx.smk import run

run(snakemake, reconstruction)  # noqa: F821 (injected by Snakemake)
