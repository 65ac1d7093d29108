# Features phase: frozen encoders (codec codes, CLAP embeddings) cached to Parquet, the
# fixed-CLAP reference notes, and the encoders' quality reports. The paper profile downloads
# the pretrained DAC and LAION-CLAP weights (and VGGish's, for the evaluation); the offline
# profiles build a fitted codec and a small CLAP from the train split.


rule features:
    input:
        expand(f"{DATA}/features/codes/{{split}}.parquet", split=SPLITS),
        expand(f"{DATA}/features/clap_audio/{{split}}.parquet", split=SPLITS),
        f"{DATA}/features/clap_text/prompts.parquet",
        expand(f"{DATA}/features/reference/{{split}}.parquet", split=SPLITS),
        f"{RESULTS}/features/codec_quality.json",
        encoder_reports(),
        [weights_file(VGGISH)] if VGGISH["enabled"] else [],


rule fetch_dac:
    input:
        # ancient() and no import following: neither a newer download script nor an edit elsewhere
        # may make Snakemake delete weights already here (possibly placed by hand, offline).
        ancient(code("features/fetch_weights.py", follow_imports=False)),
    output:
        weights_file(P["codec"]["dac"]),
    params:
        url=P["codec"]["dac"]["url"],
        folder=parent_of_output,
    conda:
        ENV
    log:
        f"{LOGS}/fetch_dac.log",
    shell:
        "python -m instrumentgen.features.fetch_weights dac --dir {params.folder} --url {params.url} > {log} 2>&1"


rule fetch_clap:
    input:
        ancient(code("features/fetch_weights.py", follow_imports=False)),  # see fetch_dac
    output:
        weights_file(P["clap"]["laion"]),
    params:
        url=P["clap"]["laion"]["url"],
        folder=parent_of_output,
    conda:
        ENV
    log:
        f"{LOGS}/fetch_clap.log",
    shell:
        "python -m instrumentgen.features.fetch_weights clap --dir {params.folder} --url {params.url} > {log} 2>&1"


rule fetch_vggish:
    # Used by the evaluate phase, fetched with the other weights: a network problem shows up before
    # days of training, not after.
    input:
        ancient(code("features/fetch_weights.py", follow_imports=False)),  # see fetch_dac
    output:
        weights_file(VGGISH),
    params:
        url=VGGISH["url"],
        sha256=f"--sha256 {VGGISH['sha256']}" if VGGISH["sha256"] else "",
        folder=parent_of_output,
    conda:
        ENV
    log:
        f"{LOGS}/fetch_vggish.log",
    shell:
        "python -m instrumentgen.features.fetch_weights vggish --dir {params.folder} --url {params.url}"
        " {params.sha256} > {log} 2>&1"


rule bootstrap_codec:
    input:
        store=store_files("train"),
        code=code("codec/fit.py", exclude=UNUSED_ENCODER_CODE),
    output:
        f"{DATA}/models/codec.npz",
    params:
        store=store_prefix,
        n_codebooks=P["codec"]["n_codebooks"],
        codebook_size=P["codec"]["codebook_size"],
        seed=P["seed"],
        fitted=P["codec"]["fitted"],
    threads: 16  # capped at --cores
    conda:
        ENV
    log:
        f"{LOGS}/bootstrap_codec.log",
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
        captions=f"{DATA}/synthetic/captions.json",
        code=code("clap/train_small.py", exclude=UNUSED_ENCODER_CODE),
    output:
        f"{DATA}/models/clap.npz",
    params:
        store=store_prefix,
        seed=P["seed"],
        small=P["clap"]["small"],
    conda:
        ENV
    log:
        f"{LOGS}/bootstrap_clap.log",
    shell:
        "python -m instrumentgen.clap.train_small --store {params.store} --captions {input.captions}"
        " --out {output} --seed {params.seed} --window-s {params.small[window_s]}"
        " --pca-dims {params.small[pca_dims]} --cca-dims {params.small[cca_dims]}"
        " --text-reg {params.small[text_reg]} --dim {params.small[dim]} --no-progress > {log} 2>&1"


rule codec_quality:
    input:
        codec=codec_model(),
        store=store_files("test"),
        code=code("codec/evaluate.py", exclude=UNUSED_ENCODER_CODE),
    output:
        report(f"{RESULTS}/features/codec_quality.json", caption="../report/codec_quality.rst", category="Encoders"),
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
        f"{LOGS}/codec_quality.log",
    shell:
        "python -m instrumentgen.codec.evaluate --codec {input.codec} --store {params.store} --out {output}"
        " --n-codebooks {params.n_codebooks} --seed {params.seed} --max-notes {params.max_notes}"
        " > {log} 2>&1"


rule clap_retrieval:
    input:
        model=clap_model(),
        store=store_files("test"),
        captions=f"{DATA}/synthetic/captions.json",
        code=code("clap/evaluate.py", exclude=UNUSED_ENCODER_CODE),
    output:
        report(f"{RESULTS}/features/clap_retrieval.json", caption="../report/clap_retrieval.rst", category="Encoders"),
    params:
        store=store_prefix,
    conda:
        ENV
    log:
        f"{LOGS}/clap_retrieval.log",
    shell:
        "python -m instrumentgen.clap.evaluate --model {input.model} --store {params.store}"
        " --captions {input.captions} --out {output} --no-progress > {log} 2>&1"


rule encode_codes:
    input:
        codec=codec_model(),
        store=store_files("{split}"),
        code=code("features/codes.py", exclude=UNUSED_ENCODER_CODE),
    output:
        f"{DATA}/features/codes/{{split}}.parquet",
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
        f"{LOGS}/encode_codes_{{split}}.log",
    shell:
        "python -m instrumentgen.features.codes --model {input.codec} --store {params.store}"
        " --out {output} --n-codebooks {params.n_codebooks} --batch-size {params.batch_size} > {log} 2>&1"


rule embed_audio:
    input:
        model=clap_model(),
        store=store_files("{split}"),
        code=code("features/clap_audio.py", exclude=UNUSED_ENCODER_CODE),
    output:
        f"{DATA}/features/clap_audio/{{split}}.parquet",
    params:
        store=store_prefix,
        batch_size=P["clap"]["batch_size"],
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        f"{LOGS}/embed_audio_{{split}}.log",
    shell:
        "python -m instrumentgen.features.clap_audio --model {input.model} --store {params.store}"
        " --out {output} --batch-size {params.batch_size} > {log} 2>&1"


rule embed_prompts:
    input:
        model=clap_model(),
        prompts=P["prompts"]["file"],
        code=code("features/clap_text.py", exclude=UNUSED_ENCODER_CODE),
    output:
        f"{DATA}/features/clap_text/prompts.parquet",
    resources:
        gpu=GPU_ENCODERS,
        **CLUSTER["encode"],
    conda:
        ENV
    log:
        f"{LOGS}/embed_prompts.log",
    shell:
        "python -m instrumentgen.features.clap_text --model {input.model} --prompts {input.prompts}"
        " --out {output} > {log} 2>&1"


rule reference_notes:
    input:
        train=f"{DATA}/manifest/train.parquet",
        manifests=expand(f"{DATA}/manifest/{{split}}.parquet", split=SPLITS),
        code=code("features/reference.py"),
    output:
        expand(f"{DATA}/features/reference/{{split}}.parquet", split=SPLITS),
    params:
        pitch=json.dumps(P["features"]["reference"]["pitch"]),
        velocity=P["features"]["reference"]["velocity"],
    conda:
        ENV
    log:
        f"{LOGS}/reference_notes.log",
    shell:
        "python -m instrumentgen.features.reference --train-manifest {input.train}"
        " --manifests {input.manifests} --out {output} --pitch-overrides '{params.pitch}'"
        " --velocity {params.velocity} > {log} 2>&1"
