from morphotx.data.demo import demo_data
from morphotx.smk import run

run(snakemake, demo_data)  # noqa: F821 (injected by Snakemake)
