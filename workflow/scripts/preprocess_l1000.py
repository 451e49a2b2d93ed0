import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.prepare.preprocess import preprocess_l1000
from morphotx.smk import run

run(snakemake, preprocess_l1000)  # noqa: F821 (injected by Snakemake)
