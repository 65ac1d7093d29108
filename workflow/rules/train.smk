# Train phase: the codec language model in each variant of params `variants` (paper Section 4):
# baseline / random / fixed CLAP with the AR objective, baseline CLAP with the MAGNeT objective.
# Training resumes from its last checkpoint (data/<profile>/checkpoints/lm/<variant>/<fingerprint>/),
# which is not a rule output, so a failed or killed job never loses it.


rule train:
    input:
        expand(PATHS.lm("{variant}"), variant=VARIANTS),
        PATHS.loss_curves,


rule train_variant:
    input:
        unpack(training_inputs),
        code=code("train/cli.py"),
    output:
        model=PATHS.lm("{variant}"),
        curves=multiext(PATHS.train_run("{variant}"), "train.csv", "valid.csv", "summary.json"),
    params:
        launcher=TRAIN_LAUNCHER,
        lm=LM_JSON,
        settings=train_json,
        seed=P["seed"],
        reference=reference_args,
        results=lambda wildcards, output: os.path.dirname(output.curves[0]),
        checkpoints=PATHS.checkpoints("{variant}"),
    threads: TRAIN_THREADS
    resources:
        gpu=GPU_TRAINING,
        **CLUSTER["train"],
    conda:
        ENV
    log:
        PATHS.log("train_{variant}"),
    shell:
        "{params.launcher} -m instrumentgen.train --variant {wildcards.variant} --seed {params.seed}"
        " --lm {params.lm:q} --settings {params.settings:q}"
        " --train-codes {input.train_codes} --train-clap {input.train_clap}"
        " --valid-codes {input.valid_codes} --valid-clap {input.valid_clap} {params.reference}"
        " --model-out {output.model} --results-dir {params.results} --checkpoint-root {params.checkpoints}"
        " > {log} 2>&1"


rule loss_curves:
    input:
        curves=expand(PATHS.valid_curve("{variant}"), variant=VARIANTS),
        code=code("train/curves.py"),
    output:
        figure=report(PATHS.loss_curves, caption="../report/loss_curves.rst", category="Training"),
        table=report(PATHS.loss_summary, caption="../report/loss_summary.rst", category="Training"),
    params:
        variants=VARIANTS,
        runs=lambda wildcards, input: os.path.dirname(os.path.dirname(input.curves[0])),
    conda:
        ENV
    log:
        PATHS.log("loss_curves"),
    shell:
        "python -m instrumentgen.train.curves --runs {params.runs} --variants {params.variants}"
        " --figure {output.figure} --table {output.table} > {log} 2>&1"
