from morphotx.report.leaderboard import training_summary
from morphotx.smk import run

run(snakemake, training_summary)  # noqa: F821 (injected by Snakemake)
