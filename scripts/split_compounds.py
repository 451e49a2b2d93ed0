import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.split import split_files

smk = snakemake  # noqa: F821
split_files(list(smk.input), smk.output[0], **dict(smk.params.items()))
