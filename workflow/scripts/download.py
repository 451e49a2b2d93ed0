import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.data.download import download
from morphotx.smk import run

run(snakemake, download)  # noqa: F821 (injected by Snakemake)
