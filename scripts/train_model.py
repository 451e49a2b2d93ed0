import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import fold_slots, setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.models import train_model

smk = snakemake  # noqa: F821
for fold in smk.params.folds:
    i, o = fold_slots(smk.input, fold), fold_slots(smk.output, fold)
    train_model(smk.wildcards.model, smk.params.model_cfg, smk.params.train, i["cp"], i["l1000"], i["pairs"],
                i["sets"], o["checkpoint"], o["history"], o["params"], seed=int(smk.wildcards.seed),
                threads=smk.threads)
