import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.data.harmonise import harmonise
from morphotx.smk import run

run(snakemake, harmonise)  # noqa: F821 (injected by Snakemake)
