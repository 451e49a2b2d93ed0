import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.report.headline import headline
from morphotx.smk import run

run(snakemake, headline)  # noqa: F821 (injected by Snakemake)
