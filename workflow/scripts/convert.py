from morphotx.data.convert import convert
from morphotx.smk import run

run(snakemake, convert)  # noqa: F821 (injected by Snakemake)
