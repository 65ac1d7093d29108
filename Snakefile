# instrumentgen: reproduce "Generating Sample-Based Musical Instruments Using Neural Audio
# Codec Language Models" (ISMIR 2024). Snakemake executes, DVC records (dvc.yaml).
#
#   snakemake --profile workflow/profiles/paper                # paper profile (GPU + internet)
#   snakemake --cores all                                      # the same without the profile (one GPU job per GPU)
#   snakemake --profile workflow/profiles/slurm                # paper profile on a Slurm cluster
#   snakemake --profile workflow/profiles/tiny                 # offline demo
#   snakemake --profile workflow/profiles/ci                   # end-to-end test settings
#
# Rules are thin: the logic lives in src/instrumentgen/ (importable, unit-tested).

report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/listening.smk"


rule all:
    default_target: True
    input:
        rules.data.input,
        rules.features.input,
        rules.train.input,
        rules.generate.input,
        rules.evaluate.input,
        rules.listening.input,
