import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.evaluate.arithmetic import arithmetic
from morphotx.smk import run

run(snakemake, arithmetic)  # noqa: F821 (injected by Snakemake)
