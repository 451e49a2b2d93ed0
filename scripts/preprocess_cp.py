import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.recipe_choice import choose_cp_recipe
from morphotx.smk import run

run(snakemake, choose_cp_recipe)  # noqa: F821 (injected by Snakemake)
