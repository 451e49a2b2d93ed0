import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.headline import write_headline

smk = snakemake  # noqa: F821
i, o, p = smk.input, smk.output, smk.params
write_headline([i.classification], [i.embedding_metrics], o.parquet, o.markdown, metric=p.metric, ci=p.ci,
               confidence=p.confidence, tsv_out=o.tsv, split_mode=p.split_mode)
