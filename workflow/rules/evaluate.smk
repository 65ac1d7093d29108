# Evaluate phase (paper Section 3): embeddings of every generated note, of the codec's reconstruction
# of the test split and (VGGish) of the test split itself, then Tables 2 (S2I) and 3 (T2I), Figure 2
# and a metrics JSON, with the timbre-following metrics (S2I instrument retrieval, T2I family accuracy
# by a classifier fitted on the train split, condition sensitivity). S2I scores leave out each test
# instrument's query cell, drawn with the generation's seed. CLAP always; VGGish (FAD-VGGish) where
# evaluate.vggish.enabled (the paper profile), else the tables say "n/a offline" in that column.


rule evaluate:
    input:
        f"{RESULTS}/metrics/evaluation.json",
        f"{RESULTS}/evaluate/t2i_spectrograms.png",
        f"{DATA}/listening/kit",  # the listening tests (listening.smk) are part of the evaluation
        f"{RESULTS}/listening/table4.md",
        f"{RESULTS}/companion",


rule embed_generated:
    input:
        model=embedder_model,
        manifest=f"{DATA}/generated/{{variant}}/{{task}}/manifest.parquet",
        audio=f"{DATA}/generated/{{variant}}/{{task}}/audio",
        code=embedder_code,
    output:
        f"{DATA}/evaluation/{{embedder}}/{{variant}}_{{task}}.parquet",
    params:
        batch_size=embedder_batch,
    threads: GEN_THREADS
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        f"{LOGS}/embed_generated_{{embedder}}_{{variant}}_{{task}}.log",
    shell:
        "python -m instrumentgen.metrics.embed_notes --embedder {wildcards.embedder} --model {input.model}"
        " --manifest {input.manifest} --out {output} --batch-size {params.batch_size} --threads {threads}"
        " > {log} 2>&1"


rule embed_reconstruction:
    input:
        model=embedder_model,
        codec=codec_model(),
        codes=f"{DATA}/features/codes/test.parquet",
        code=embedder_code,
    output:
        f"{DATA}/evaluation/{{embedder}}/reconstruction_test.parquet",
    params:
        batch_size=embedder_batch,
    threads: GEN_THREADS
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        f"{LOGS}/embed_reconstruction_{{embedder}}.log",
    shell:
        "python -m instrumentgen.metrics.embed_notes --embedder {wildcards.embedder} --model {input.model}"
        " --codes {input.codes} --codec {input.codec} --out {output} --batch-size {params.batch_size}"
        " --threads {threads} > {log} 2>&1"


rule embed_test_vggish:
    # The test split's own VGGish frames (its CLAP embeddings are the features phase's cache).
    input:
        model=weights_file(VGGISH),
        store=store_files("test"),
        code=code("metrics/embed_notes.py", exclude=UNUSED_ENCODER_CODE),
    output:
        f"{DATA}/evaluation/vggish/test.parquet",
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
        f"{LOGS}/embed_test_vggish.log",
    shell:
        "python -m instrumentgen.metrics.embed_notes --embedder vggish --model {input.model}"
        " --store {params.store} --out {output} --batch-size {params.batch_size} --threads {threads}"
        " > {log} 2>&1"


rule evaluate_tables:
    input:
        unpack(vggish_inputs),
        reference=expand(f"{DATA}/features/clap_audio/{{split}}.parquet", split=["valid", "test"]),
        test=f"{DATA}/features/clap_audio/test.parquet",
        train=f"{DATA}/features/clap_audio/train.parquet",
        reconstruction=f"{DATA}/evaluation/clap/reconstruction_test.parquet",
        prompts=f"{DATA}/features/clap_text/prompts.parquet",
        s2i=expand(f"{DATA}/evaluation/clap/{{variant}}_s2i.parquet", variant=VARIANTS),
        t2i=expand(f"{DATA}/evaluation/clap/{{variant}}_t2i.parquet", variant=VARIANTS),
        code=code("metrics/evaluate.py"),
    output:
        metrics=f"{RESULTS}/metrics/evaluation.json",
        details=f"{RESULTS}/evaluate/details.json",
        tables=report(
            multiext(f"{RESULTS}/evaluate/table2", ".md", ".tex", ".csv")
            + multiext(f"{RESULTS}/evaluate/table3", ".md", ".tex", ".csv"),
            caption="../report/tables.rst",
            category="Evaluation",
        ),
        figure=report(
            multiext(f"{RESULTS}/evaluate/figure2", ".png", ".svg"),
            caption="../report/figure2.rst",
            category="Evaluation",
        ),
    params:
        s2i=lambda wc, input: " ".join(f"{v}={p}" for v, p in zip(VARIANTS, input.s2i)),
        t2i=lambda wc, input: " ".join(f"{v}={p}" for v, p in zip(VARIANTS, input.t2i)),
        vggish=vggish_args,
        figure_prompt=P["evaluate"]["figure_prompt"] or "",
        seed=P["seed"],
        out_dir=lambda wc, output: os.path.dirname(output.details),
    conda:
        ENV
    log:
        f"{LOGS}/evaluate_tables.log",
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
        manifests=expand(f"{DATA}/generated/{{variant}}/t2i/manifest.parquet", variant=VARIANTS),
        audio=expand(f"{DATA}/generated/{{variant}}/t2i/audio", variant=VARIANTS),
        prompts=P["prompts"]["file"],
        real=f"{DATA}/manifest/test.parquet",
        code=code("metrics/prompt_spectrograms.py"),
    output:
        figure=report(
            multiext(f"{RESULTS}/evaluate/t2i_spectrograms", ".png", ".svg"),
            caption="../report/t2i_spectrograms.rst",
            category="Evaluation",
        ),
    params:
        generated=lambda wc, input: " ".join(f"{v}={p}" for v, p in zip(VARIANTS, input.manifests)),
        pitches=" ".join(str(p) for p in P["evaluate"]["spectrograms"]["pitches"]),
        velocity=P["evaluate"]["spectrograms"]["velocity"],
        png=lambda wc, output: next(f for f in output.figure if f.endswith(".png")),
    conda:
        ENV
    log:
        f"{LOGS}/prompt_spectrograms.log",
    shell:
        "python -m instrumentgen.metrics.prompt_spectrograms --generated {params.generated}"
        " --prompts {input.prompts} --real {input.real} --pitches {params.pitches}"
        " --velocity {params.velocity} --out {params.png} > {log} 2>&1"
