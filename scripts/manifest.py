import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.manifest import write_manifest

smk = snakemake  # noqa: F821
write_manifest(smk.params.config, dict(smk.input.items()), smk.params.git, smk.output[0])
