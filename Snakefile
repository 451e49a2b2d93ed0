# morphotx: from replicate-level Cell Painting + L1000 profiles to scored MoA predictions.
#   snakemake --cores 2                                      # the embedded demo
#   snakemake --cores 8 --configfile config/my_dataset.yaml  # your files
import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


from morphotx.configcheck import check_config_keys
from morphotx.smk import stop_on_bad_input

# a misspelt key: one line with the nearest valid key, before jsonschema's long report
with stop_on_bad_input("configuration"):
    check_config_keys(
        config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
    )


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/harmonise.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/pairing.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"


report: report_front_page()


rule all:
    default_target: True
    input:
        rules.models.input,
        rules.leaderboard.output,
        rules.headline.output,
        rules.training_summary.output,
        rules.manifest.output,
        FIGURES,


onstart:
    # what jobs killed by a kill -9 left (temporary files and folders): no job runs yet, and
    # Snakemake's lock keeps other runs out of this directory
    from morphotx.io import sweep_temporaries

    swept = sweep_temporaries(OUT)
    if swept:
        print(
            f"removed {len(swept)} temporary file(s) of interrupted jobs under {OUT}",
            file=sys.stderr,
        )
    # SLURM: refuse unknown resources, missing partitions and GPU jobs without a GPU partition
    # before anything is submitted (src/morphotx/cluster.py)
    from morphotx.cluster import check_device, check_workflow
    from morphotx.smk import stop_on_bad_input

    check_workflow(workflow)
    # train.device: cuda on a machine without CUDA: refused before any job runs
    with stop_on_bad_input("configuration"):
        check_device(workflow, SETTINGS.train.device)
