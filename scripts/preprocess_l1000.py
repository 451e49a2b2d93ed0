from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.preprocess import preprocess_l1000

smk = snakemake  # noqa: F821
preprocess_l1000(smk.input.profiles, smk.input.split, smk.output.profiles, smk.output.features,
                 smk.output.fitted, **dict(smk.params.items()))
