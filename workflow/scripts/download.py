from morphotx.data.download import download
from morphotx.smk import run

run(snakemake, download)  # noqa: F821 (injected by Snakemake)
