from morphotx.report.leaderboard import leaderboard
from morphotx.smk import run

run(snakemake, leaderboard)  # noqa: F821 (injected by Snakemake)
