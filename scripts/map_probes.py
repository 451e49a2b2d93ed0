from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.probes import map_probes_file

smk = snakemake  # noqa: F821
map_probes_file(smk.input.profiles, smk.output[0], smk.input.probe_map, **dict(smk.params.items()))
