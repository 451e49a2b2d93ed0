import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.data.convert import convert
from morphotx.smk import run

run(snakemake, convert)  # noqa: F821 (injected by Snakemake)
