import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.models.tune import tune
from morphotx.smk import run

run(snakemake, tune)  # noqa: F821 (injected by Snakemake)
