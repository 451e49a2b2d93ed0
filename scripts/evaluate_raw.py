import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import fold_slots, setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.evaluate import OUTPUTS, evaluate_raw

smk = snakemake  # noqa: F821
for fold in smk.params.folds:
    i, o = fold_slots(smk.input, fold), fold_slots(smk.output, fold)
    evaluate_raw(int(smk.wildcards.seed), i["cp"], i["l1000"], i["cp_collapsed"], i["l1000_collapsed"],
                 {k: o[k] for k in OUTPUTS}, smk.params.cfg, fold=fold)
