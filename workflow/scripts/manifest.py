import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.report.manifest import manifest
from morphotx.smk import run

run(snakemake, manifest)  # noqa: F821 (injected by Snakemake)
