import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.report.leaderboard import training_summary
from morphotx.smk import run

run(snakemake, training_summary)  # noqa: F821 (injected by Snakemake)
