from morphotx.report.manifest import manifest
from morphotx.smk import run

run(snakemake, manifest)  # noqa: F821 (injected by Snakemake)
