import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.preprocess import preprocess_l1000

smk = snakemake  # noqa: F821
preprocess_l1000(smk.input.profiles, smk.input.split, smk.output.profiles, smk.output.features,
                 smk.output.fitted, **dict(smk.params.items()))
