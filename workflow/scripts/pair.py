import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.prepare.pairing import pair
from morphotx.smk import run

run(snakemake, pair)  # noqa: F821 (injected by Snakemake)
