from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.preprocess import preprocess_cell_painting

smk = snakemake  # noqa: F821
preprocess_cell_painting(smk.input.profiles, smk.input.split, smk.output.profiles, smk.output.features,
                         smk.output.fitted, **dict(smk.params.items()))
