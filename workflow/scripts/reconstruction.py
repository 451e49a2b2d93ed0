import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.evaluate.reconstruction import reconstruction
from morphotx.smk import run

run(snakemake, reconstruction)  # noqa: F821 (injected by Snakemake)
