import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.harmonise import harmonise

smk = snakemake  # noqa: F821
moa = smk.params.moa
harmonise(
    smk.input.profiles, smk.output[0], smk.input.fmt, smk.params.modality,
    doses=smk.params.doses, max_dose_fold=smk.params.max_dose_fold, on_bad_dose=smk.params.on_bad_dose,
    on_extreme=smk.params.on_extreme, max_unknown_columns=smk.params.max_unknown_columns,
    moa_source=moa["source"], moa_map=(smk.input.moa_map[0] if smk.input.moa_map else None),
    moa_map_key=moa["map_key"], moa_map_column=moa["map_column"],
)
