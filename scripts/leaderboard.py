import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.leaderboard import write_leaderboard

smk = snakemake  # noqa: F821
i = smk.input
evaluation = {k[len("eval_"):]: list(v) for k, v in i.items() if k.startswith("eval_")}
arithmetic = {k[len("arith_"):]: list(v) for k, v in i.items() if k.startswith("arith_")}
write_leaderboard(evaluation, arithmetic, dict(smk.output.items()), smk.params.seeds)
