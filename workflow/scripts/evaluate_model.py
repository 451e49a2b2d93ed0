import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.evaluate.jobs import evaluate_model
from morphotx.smk import run

run(snakemake, evaluate_model)  # noqa: F821 (injected by Snakemake)
