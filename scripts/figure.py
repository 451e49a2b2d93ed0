"""One script for every figure rule: the rule name picks the drawing function in morphotx.figures."""
import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx import figures as F
from morphotx.settings import section

smk = snakemake  # noqa: F821
name = smk.rule.removeprefix("figure_")
out = smk.output[0]
if name == "loss_curves":
    paths = list(smk.input.histories)
    F.loss_curves({m: [p for p in paths if f"/models/{m}/" in p] for m in smk.params.models}, out)
elif name == "per_moa_f1":
    F.per_moa_f1(smk.input.per_moa, out)
elif name == "leaderboard":
    F.leaderboard_chart(smk.input.board, out)
elif name == "embedding_maps":
    F.embedding_maps(dict(smk.input.items()), out, section("figures", dict(smk.params.items())))
else:
    getattr(F, name)(smk.input.table, out)
