import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.download import fetch

smk = snakemake  # noqa: F821
fetch(smk.wildcards.item, smk.params.entry, smk.output[0], smk.params.settings)
