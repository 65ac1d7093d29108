# Generate phase (paper Section 4): every variant generates instruments from audio prompts (S2I: one
# seeded query note per test instrument conditions all of that instrument's cells) and from text
# prompts (T2I: each prompt over the grid of params generate.grid); each instrument is exported as a
# playable folder (WAVs, SFZ, SF2, a MIDI demo rendered with FluidSynth), and the pitch of every
# generated note is checked against the requested one.


rule generate:
    input:
        expand(PATHS.generated("{variant}", "{task}"), variant=VARIANTS, task=TASKS),
        expand(PATHS.instruments_index("{variant}", "{task}"), variant=VARIANTS, task=TASKS),
        PATHS.pitch_table,


rule generate_instruments:
    input:
        unpack(generation_inputs),
        code=code("generate/cli.py", exclude=UNUSED_ENCODER_CODE),
    output:
        manifest=PATHS.generated("{variant}", "{task}"),
        audio=directory(PATHS.generated_audio("{variant}", "{task}")),
    params:
        decoding=decoding_json,
        task_args=task_args,
        seed=P["seed"],
        note_seconds=P["data"]["note_seconds"],
        batch_size=GEN["batch_size"],
    threads: GEN_THREADS
    resources:
        gpu=GPU_GENERATION,
        **CLUSTER["generate"],
    conda:
        ENV
    log:
        PATHS.log("generate_{variant}_{task}"),
    shell:
        "python -m instrumentgen.generate --task {wildcards.task} --model {input.model} --codec {input.codec}"
        " --clap-cache {input.clap} {params.task_args} --note-seconds {params.note_seconds}"
        " --seed {params.seed} --decoding {params.decoding:q} --batch-size {params.batch_size}"
        " --threads {threads}"
        " --out-dir {output.audio} --manifest {output.manifest} > {log} 2>&1"


rule export_instruments:
    input:
        manifest=PATHS.generated("{variant}", "{task}"),
        audio=PATHS.generated_audio("{variant}", "{task}"),
        code=code("export/cli.py"),
    output:
        folder=directory(PATHS.instruments("{variant}", "{task}")),
        index=PATHS.instruments_index("{variant}", "{task}"),
    conda:
        ENV
    log:
        PATHS.log("export_{variant}_{task}"),
    shell:
        "python -m instrumentgen.export --manifest {input.manifest} --out-dir {output.folder}"
        " --index {output.index} > {log} 2>&1"


rule pitch_accuracy:
    input:
        manifest=PATHS.generated("{variant}", "{task}"),
        audio=PATHS.generated_audio("{variant}", "{task}"),
        code=code("metrics/pitch.py"),
    output:
        PATHS.pitch_report("{variant}", "{task}"),
    params:
        max_notes=GEN["pitch_max_notes"],
        seed=P["seed"],
    threads: GEN_THREADS  # pYIN worker processes
    conda:
        ENV
    log:
        PATHS.log("pitch_accuracy_{variant}_{task}"),
    shell:
        "python -m instrumentgen.metrics.pitch --manifest {input.manifest} --out {output}"
        " --max-notes {params.max_notes} --seed {params.seed} --workers {threads} > {log} 2>&1"


rule pitch_summary:
    input:
        reports=expand(PATHS.pitch_report("{variant}", "{task}"), variant=VARIANTS, task=TASKS),
        code=code("metrics/pitch_summary.py"),
    output:
        table=report(PATHS.pitch_table, caption="../report/pitch_accuracy.rst", category="Generation"),
        json=PATHS.pitch_metrics,  # DVC metrics (outside the generate outs)
        figure=report(PATHS.pitch_figure, caption="../report/pitch_accuracy.rst", category="Generation"),
    conda:
        ENV
    log:
        PATHS.log("pitch_summary"),
    shell:
        "python -m instrumentgen.metrics.pitch_summary --reports {input.reports} --table {output.table}"
        " --json {output.json} --figure {output.figure} > {log} 2>&1"
