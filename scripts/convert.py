import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.convert import to_parquet

smk = snakemake  # noqa: F821
to_parquet(smk.input.profiles, smk.output[0], smk.input.fmt, smk.params.modality)
