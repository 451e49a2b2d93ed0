import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.prepare.recipe_choice import preprocess_cp
from morphotx.smk import run

run(snakemake, preprocess_cp)  # noqa: F821 (injected by Snakemake)
