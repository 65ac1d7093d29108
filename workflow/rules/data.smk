# Data phase: NSynth (download | synthesize) -> prune to 88 keys -> resample to the codec rate.


rule data:
    input:
        expand(f"{DATA}/manifest/{{split}}.parquet", split=SPLITS),
        expand(f"{DATA}/resampled/{{split}}.{{ext}}", split=SPLITS, ext=["npy", "parquet"]),
        f"{RESULTS}/data/summary.csv",
        f"{RESULTS}/data/coverage.png",


rule nsynth:
    input:
        # ancient(), and not nsynth/metadata.py or what the weights code shares (download.py): an
        # edit there must not force a re-extraction of 39 GB and a re-resampling of ~100 GB; the
        # archives are checksummed and prune re-validates the data anyway.
        ancient(code("nsynth/fetch.py", "download.py", "nsynth/archive.py", follow_imports=False)),
    output:
        directory(f"{DATA}/nsynth/nsynth-{{split}}"),
    params:
        out_root=parent_of_output,
        base_url=P["nsynth"]["base_url"],
        archive_dir=P["nsynth"]["archive_dir"],
        retries=P["nsynth"]["retries"],
        timeout=P["nsynth"]["timeout_s"],
    conda:
        ENV
    log:
        f"{LOGS}/nsynth_{{split}}.log",
    shell:
        "python -m instrumentgen.nsynth.fetch --split {wildcards.split}"
        " --base-url {params.base_url} --archive-dir {params.archive_dir}"
        " --out-root {params.out_root} --retries {params.retries} --timeout {params.timeout}"
        " > {log} 2>&1"


rule synthesize:
    input:
        code("synth"),
    output:
        [directory(f"{DATA}/synthetic/nsynth-{s}") for s in SPLITS],
        captions=f"{DATA}/synthetic/captions.json",
    params:
        out_root=parent_of_output,
        seed=P["seed"],
        per_family=",".join(f"{s}={P['synthetic']['instruments_per_family'][s]}" for s in SPLITS),
        pitch_step=P["synthetic"]["pitch_step"],
        cell_dropout=synthetic_cell_dropout,
        sample_rate=P["data"]["sample_rate"],
        note_seconds=P["data"]["note_seconds"],
        velocities=P["data"]["velocities"],
    threads: 16  # capped at --cores
    conda:
        ENV
    log:
        f"{LOGS}/synthesize.log",
    shell:
        "python -m instrumentgen.synth --out-root {params.out_root} --seed {params.seed}"
        " --instruments-per-family {params.per_family}"
        " --pitch-step {params.pitch_step} --cell-dropout {params.cell_dropout}"
        " --sample-rate {params.sample_rate} --note-seconds {params.note_seconds}"
        " --velocities {params.velocities} --workers {threads} > {log} 2>&1"


rule prune:
    input:
        raw=raw_split,
        code=code("data/prune.py"),
    output:
        f"{DATA}/manifest/{{split}}.parquet",
    params:
        pitch_min=P["data"]["pitch_min"],
        pitch_max=P["data"]["pitch_max"],
        velocities=P["data"]["velocities"],
        sample_rate=P["data"]["sample_rate"],
        note_seconds=P["data"]["note_seconds"],
    conda:
        ENV
    log:
        f"{LOGS}/prune_{{split}}.log",
    shell:
        "python -m instrumentgen.data.prune --split-dir {input.raw} --out {output}"
        " --pitch-min {params.pitch_min} --pitch-max {params.pitch_max}"
        " --velocities {params.velocities} --sample-rate {params.sample_rate}"
        " --note-seconds {params.note_seconds} > {log} 2>&1"


rule resample:
    input:
        manifest=f"{DATA}/manifest/{{split}}.parquet",
        code=code("data/resample.py"),
    output:
        audio=f"{DATA}/resampled/{{split}}.npy",
        index=f"{DATA}/resampled/{{split}}.parquet",
    params:
        target_rate=P["resample"]["target_rate"],
        quality=P["resample"]["quality"],
        chunk_notes=P["resample"]["chunk_notes"],
        sample_rate=P["data"]["sample_rate"],
        note_seconds=P["data"]["note_seconds"],
    threads: 16  # capped at --cores
    conda:
        ENV
    log:
        f"{LOGS}/resample_{{split}}.log",
    shell:
        "python -m instrumentgen.data.resample --manifest {input.manifest}"
        " --out-audio {output.audio} --out-index {output.index}"
        " --target-rate {params.target_rate} --quality {params.quality}"
        " --chunk-notes {params.chunk_notes} --sample-rate {params.sample_rate}"
        " --note-seconds {params.note_seconds} --workers {threads} > {log} 2>&1"


rule data_summary:
    input:
        manifests=expand(f"{DATA}/manifest/{{split}}.parquet", split=SPLITS),
        code=code("data/summary.py"),
    output:
        table=report(f"{RESULTS}/data/summary.csv", caption="../report/data_summary.rst", category="Data"),
        figure=report(f"{RESULTS}/data/coverage.png", caption="../report/data_coverage.rst", category="Data"),
    conda:
        ENV
    log:
        f"{LOGS}/data_summary.log",
    shell:
        "python -m instrumentgen.data.summary --manifests {input.manifests}"
        " --table {output.table} --figure {output.figure} > {log} 2>&1"
