import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.data.demo import demo_data
from morphotx.smk import run

run(snakemake, demo_data)  # noqa: F821 (injected by Snakemake)
