# Features phase: frozen encoders (codec codes, CLAP embeddings) cached to Parquet, the
# fixed-CLAP reference notes, and the encoders' quality reports. The paper profile downloads
# the pretrained DAC and LAION-CLAP weights (and VGGish's, for the evaluation); the offline
# profiles build a fitted codec and a small CLAP from the train split.


rule features:
    input:
        expand(PATHS.codes("{split}"), split=SPLITS),
        expand(PATHS.clap_audio("{split}"), split=SPLITS),
        PATHS.clap_text,
        expand(PATHS.reference("{split}"), split=SPLITS),
        PATHS.codec_quality,
        PATHS.encoder_reports(),
        [PATHS.vggish] if VGGISH["enabled"] else [],


rule fetch_weights:
    # The pretrained DAC, LAION-CLAP and VGGish weights (instrumentgen.artifacts.weights_sources), each to
    # where params weights_dir says. VGGish's are used by the evaluate phase but fetched with the others:
    # a network problem shows up before days of training, not after.
    input:
        # ancient() and no import following: neither a newer download script nor an edit elsewhere
        # may make Snakemake delete weights already here (possibly placed by hand, offline).
        ancient(code("features/fetch_weights.py", follow_imports=False)),
    output:
        "{weights_file}",
    wildcard_constraints:
        weights_file=weights_files_regex(P),  # exactly the weights files, nothing else
    params:
        what=lambda wildcards: WEIGHTS[wildcards.weights_file],
        url=lambda wildcards: weights_source(wildcards)["url"],
        sha256=lambda wildcards: args.sha256_arg(weights_source(wildcards)),
        folder=parent_of_output,
    conda:
        ENV
    log:
        PATHS.log("fetch_weights/{weights_file}"),  # a log must have its output's wildcards
    shell:
        "python -m instrumentgen.features.fetch_weights {params.what} --dir {params.folder} --url {params.url}"
        "{params.sha256} > {log} 2>&1"


rule bootstrap_codec:
    input:
        store=store_files("train"),
        code=code("codec/fit.py", exclude=UNUSED_ENCODER_CODE),
    output:
        PATHS.fitted_codec,
    params:
        store=store_prefix,
        n_codebooks=P["codec"]["n_codebooks"],
        codebook_size=P["codec"]["codebook_size"],
        seed=P["seed"],
        fitted=P["codec"]["fitted"],
    threads: ALL_CORES
    conda:
        ENV
    log:
        PATHS.log("bootstrap_codec"),
    shell:
        "python -m instrumentgen.codec.fit --store {params.store} --out {output}"
        " --n-codebooks {params.n_codebooks} --codebook-size {params.codebook_size} --seed {params.seed}"
        " --max-frames {params.fitted[max_frames]} --n-fft {params.fitted[n_fft]}"
        " --hop-length {params.fitted[hop_length]} --griffin-lim-iters {params.fitted[griffin_lim_iters]}"
        " --median-frames {params.fitted[median_frames]}"
        " > {log} 2>&1"


rule bootstrap_clap:
    input:
        store=store_files("train"),
        captions=PATHS.captions,
        code=code("clap/train_small.py", exclude=UNUSED_ENCODER_CODE),
    output:
        PATHS.small_clap,
    params:
        store=store_prefix,
        seed=P["seed"],
        small=P["clap"]["small"],
    conda:
        ENV
    log:
        PATHS.log("bootstrap_clap"),
    shell:
        "python -m instrumentgen.clap.train_small --store {params.store} --captions {input.captions}"
        " --out {output} --seed {params.seed} --window-s {params.small[window_s]}"
        " --pca-dims {params.small[pca_dims]} --cca-dims {params.small[cca_dims]}"
        " --text-reg {params.small[text_reg]} --dim {params.small[dim]} --no-progress > {log} 2>&1"


rule codec_quality:
    input:
        codec=PATHS.codec,
        store=store_files("test"),
        code=code("codec/evaluate.py", exclude=UNUSED_ENCODER_CODE),
    output:
        report(PATHS.codec_quality, caption="../report/codec_quality.rst", category="Encoders"),
    params:
        store=store_prefix,
        n_codebooks=P["codec"]["n_codebooks"],
        max_notes=P["codec"]["quality_max_notes"],
        seed=P["seed"],
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("codec_quality"),
    shell:
        "python -m instrumentgen.codec.evaluate --codec {input.codec} --store {params.store} --out {output}"
        " --n-codebooks {params.n_codebooks} --seed {params.seed} --max-notes {params.max_notes}"
        " > {log} 2>&1"


rule clap_retrieval:
    input:
        model=PATHS.clap,
        store=store_files("test"),
        captions=PATHS.captions,
        code=code("clap/evaluate.py", exclude=UNUSED_ENCODER_CODE),
    output:
        report(PATHS.clap_retrieval, caption="../report/clap_retrieval.rst", category="Encoders"),
    params:
        store=store_prefix,
    conda:
        ENV
    log:
        PATHS.log("clap_retrieval"),
    shell:
        "python -m instrumentgen.clap.evaluate --model {input.model} --store {params.store}"
        " --captions {input.captions} --out {output} --no-progress > {log} 2>&1"


rule encode_codes:
    input:
        codec=PATHS.codec,
        store=store_files("{split}"),
        code=code("features/codes.py", exclude=UNUSED_ENCODER_CODE),
    output:
        PATHS.codes("{split}"),
    params:
        store=store_prefix,
        n_codebooks=P["codec"]["n_codebooks"],
        batch_size=P["codec"]["batch_size"],
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("encode_codes_{split}"),
    shell:
        "python -m instrumentgen.features.codes --model {input.codec} --store {params.store}"
        " --out {output} --n-codebooks {params.n_codebooks} --batch-size {params.batch_size} > {log} 2>&1"


rule embed_audio:
    input:
        model=PATHS.clap,
        store=store_files("{split}"),
        code=code("features/clap_audio.py", exclude=UNUSED_ENCODER_CODE),
    output:
        PATHS.clap_audio("{split}"),
    params:
        store=store_prefix,
        batch_size=P["clap"]["batch_size"],
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("embed_audio_{split}"),
    shell:
        "python -m instrumentgen.features.clap_audio --model {input.model} --store {params.store}"
        " --out {output} --batch-size {params.batch_size} > {log} 2>&1"


rule embed_prompts:
    input:
        model=PATHS.clap,
        prompts=P["prompts"]["file"],
        code=code("features/clap_text.py", exclude=UNUSED_ENCODER_CODE),
    output:
        PATHS.clap_text,
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        PATHS.log("embed_prompts"),
    shell:
        "python -m instrumentgen.features.clap_text --model {input.model} --prompts {input.prompts}"
        " --out {output} > {log} 2>&1"


rule reference_notes:
    input:
        train=PATHS.manifest("train"),
        manifests=expand(PATHS.manifest("{split}"), split=SPLITS),
        code=code("features/reference.py"),
    output:
        expand(PATHS.reference("{split}"), split=SPLITS),
    params:
        pitch=settings.reference_pitch_json(P),
        velocity=P["features"]["reference"]["velocity"],
    conda:
        ENV
    log:
        PATHS.log("reference_notes"),
    shell:
        "python -m instrumentgen.features.reference --train-manifest {input.train}"
        " --manifests {input.manifests} --out {output} --pitch-overrides '{params.pitch}'"
        " --velocity {params.velocity} > {log} 2>&1"
