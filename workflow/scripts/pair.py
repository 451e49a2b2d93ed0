from morphotx.prepare.pairing import pair
from morphotx.smk import run

run(snakemake, pair)  # noqa: F821 (injected by Snakemake)
