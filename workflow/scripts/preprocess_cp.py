from morphotx.prepare.recipe_choice import preprocess_cp
from morphotx.smk import run

run(snakemake, preprocess_cp)  # noqa: F821 (injected by Snakemake)
