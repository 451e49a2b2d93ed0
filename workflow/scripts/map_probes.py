from morphotx.data.probes import map_probes
from morphotx.smk import run

run(snakemake, map_probes)  # noqa: F821 (injected by Snakemake)
