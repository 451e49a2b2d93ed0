import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.prepare.split import split_compounds
from morphotx.smk import run

run(snakemake, split_compounds)  # noqa: F821 (injected by Snakemake)
