from morphotx.report.headline import headline
from morphotx.smk import run

run(snakemake, headline)  # noqa: F821 (injected by Snakemake)
