import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import fold_slots, setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.models import embed_model

smk = snakemake  # noqa: F821
for fold in smk.params.folds:
    i = fold_slots(smk.input, fold)
    embed_model(smk.params.model, smk.params.model_cfg, smk.params.train, i["checkpoint"], i["cp"], i["l1000"],
                i["pairs"], i["sets"], outputs=fold_slots(smk.output, fold), threads=smk.threads,
                collapse=smk.params.collapse)
