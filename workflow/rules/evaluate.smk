# Evaluate phase (paper Section 3): embeddings of every generated note, of the codec's reconstruction
# of the test split and (VGGish) of the test split itself, then Tables 2 (S2I) and 3 (T2I), Figure 2
# and a metrics JSON, with the timbre-following metrics (S2I instrument retrieval, T2I family accuracy
# by a classifier fitted on the train split, condition sensitivity). S2I scores leave out each test
# instrument's query cell, drawn with the generation's seed. CLAP always; VGGish (FAD-VGGish) where
# evaluate.vggish.enabled (the paper profile), else the tables say "n/a offline" in that column.


rule evaluate:
    input:
        PATHS.evaluation_metrics,
        PATHS.t2i_spectrograms,
        PATHS.listening_kit,  # the listening tests (listening.smk) are part of the evaluation
        PATHS.table4_md,
        PATHS.companion,


rule embed_generated:
    input:
        model=embedder_model,
        manifest=PATHS.generated("{variant}", "{task}"),
        audio=PATHS.generated_audio("{variant}", "{task}"),
        code=embedder_code,
    output:
        PATHS.embeddings("{embedder}", "{variant}_{task}"),
    params:
        batch_size=embedder_batch,
    threads: GEN_THREADS
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("embed_generated_{embedder}_{variant}_{task}"),
    shell:
        "python -m instrumentgen.metrics.embed_notes --embedder {wildcards.embedder} --model {input.model}"
        " --manifest {input.manifest} --out {output} --batch-size {params.batch_size} --threads {threads}"
        " > {log} 2>&1"


rule embed_reconstruction:
    input:
        model=embedder_model,
        codec=PATHS.codec,
        codes=PATHS.codes("test"),
        code=embedder_code,
    output:
        PATHS.embeddings("{embedder}", "reconstruction_test"),
    params:
        batch_size=embedder_batch,
    threads: GEN_THREADS
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("embed_reconstruction_{embedder}"),
    shell:
        "python -m instrumentgen.metrics.embed_notes --embedder {wildcards.embedder} --model {input.model}"
        " --codes {input.codes} --codec {input.codec} --out {output} --batch-size {params.batch_size}"
        " --threads {threads} > {log} 2>&1"


rule embed_test_vggish:
    # The test split's own VGGish frames (its CLAP embeddings are the features phase's cache).
    input:
        model=PATHS.vggish,
        store=store_files("test"),
        code=code("metrics/embed_notes.py", exclude=UNUSED_ENCODER_CODE),
    output:
        PATHS.embeddings("vggish", "test"),
    params:
        store=store_prefix,
        batch_size=VGGISH["batch_size"],
    threads: GEN_THREADS
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("embed_test_vggish"),
    shell:
        "python -m instrumentgen.metrics.embed_notes --embedder vggish --model {input.model}"
        " --store {params.store} --out {output} --batch-size {params.batch_size} --threads {threads}"
        " > {log} 2>&1"


rule evaluate_tables:
    input:
        unpack(vggish_inputs),
        reference=expand(PATHS.clap_audio("{split}"), split=["valid", "test"]),
        test=PATHS.clap_audio("test"),
        train=PATHS.clap_audio("train"),
        reconstruction=PATHS.embeddings("clap", "reconstruction_test"),
        prompts=PATHS.clap_text,
        s2i=expand(PATHS.embeddings("clap", "{variant}_s2i"), variant=VARIANTS),
        t2i=expand(PATHS.embeddings("clap", "{variant}_t2i"), variant=VARIANTS),
        code=code("metrics/evaluate.py"),
    output:
        metrics=PATHS.evaluation_metrics,
        details=PATHS.evaluation_details,
        tables=report(
            multiext(PATHS.evaluation_figure("table2"), ".md", ".tex", ".csv")
            + multiext(PATHS.evaluation_figure("table3"), ".md", ".tex", ".csv"),
            caption="../report/tables.rst",
            category="Evaluation",
        ),
        figure=report(
            multiext(PATHS.evaluation_figure("figure2"), ".png", ".svg"),
            caption="../report/figure2.rst",
            category="Evaluation",
        ),
    params:
        s2i=lambda wc, input: variant_pairs(input.s2i),
        t2i=lambda wc, input: variant_pairs(input.t2i),
        vggish=vggish_args,
        figure_prompt=P["evaluate"]["figure_prompt"] or "",
        seed=P["seed"],
        out_dir=lambda wc, output: os.path.dirname(output.details),
    conda:
        ENV
    log:
        PATHS.log("evaluate_tables"),
    shell:
        "python -m instrumentgen.metrics.evaluate --reference {input.reference} --test {input.test}"
        " --reconstruction {input.reconstruction} --prompts {input.prompts} --train {input.train}"
        " --seed {params.seed}"
        " --s2i {params.s2i} --t2i {params.t2i} {params.vggish}"
        " $( [ -n '{params.figure_prompt}' ] && echo --figure-prompt '{params.figure_prompt}' )"
        " --out-dir {params.out_dir} --metrics {output.metrics} > {log} 2>&1"


rule prompt_spectrograms:
    # Look, not only measure: T2I notes of every variant beside real test notes of the named family.
    input:
        manifests=expand(PATHS.generated("{variant}", "t2i"), variant=VARIANTS),
        audio=expand(PATHS.generated_audio("{variant}", "t2i"), variant=VARIANTS),
        prompts=P["prompts"]["file"],
        real=PATHS.manifest("test"),
        code=code("metrics/prompt_spectrograms.py"),
    output:
        figure=report(
            multiext(PATHS.evaluation_figure("t2i_spectrograms"), ".png", ".svg"),
            caption="../report/t2i_spectrograms.rst",
            category="Evaluation",
        ),
    params:
        generated=lambda wc, input: variant_pairs(input.manifests),
        pitches=" ".join(str(p) for p in P["evaluate"]["spectrograms"]["pitches"]),
        velocity=P["evaluate"]["spectrograms"]["velocity"],
        png=lambda wc, output: next(f for f in output.figure if f.endswith(".png")),
    conda:
        ENV
    log:
        PATHS.log("prompt_spectrograms"),
    shell:
        "python -m instrumentgen.metrics.prompt_spectrograms --generated {params.generated}"
        " --prompts {input.prompts} --real {input.real} --pitches {params.pitches}"
        " --velocity {params.velocity} --out {params.png} > {log} 2>&1"
