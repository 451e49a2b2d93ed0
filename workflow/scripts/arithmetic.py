from morphotx.evaluate.arithmetic import arithmetic
from morphotx.smk import run

run(snakemake, arithmetic)  # noqa: F821 (injected by Snakemake)
