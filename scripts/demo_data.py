import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.demo import write_demo

smk = snakemake  # noqa: F821
write_demo(dict(smk.output.items()), scale=smk.params.scale, seed=smk.params.seed, overrides=smk.params.overrides)
