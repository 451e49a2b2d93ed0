import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.probes import map_probes_file
from morphotx.settings import section

smk = snakemake  # noqa: F821
map_probes_file(smk.input.profiles, smk.output[0], smk.input.probe_map, section("probe_map", dict(smk.params.items())))
