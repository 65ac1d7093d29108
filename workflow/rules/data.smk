# Data phase: NSynth (download | synthesize) -> prune to 88 keys -> resample to the codec rate.


rule data:
    input:
        expand(PATHS.manifest("{split}"), split=SPLITS),
        [store_files(split) for split in SPLITS],
        PATHS.data_summary,
        PATHS.data_coverage,


rule nsynth:
    input:
        # ancient(), and not nsynth/metadata.py or what the weights code shares (download.py): an
        # edit there must not force a re-extraction of 39 GB and a re-resampling of ~100 GB; the
        # archives are checksummed and prune re-validates the data anyway.
        ancient(code("nsynth/fetch.py", "download.py", "nsynth/archive.py", follow_imports=False)),
    output:
        directory(PATHS.downloaded_split("{split}")),
    params:
        out_root=parent_of_output,
        base_url=P["nsynth"]["base_url"],
        archive_dir=P["nsynth"]["archive_dir"],
        retries=P["nsynth"]["retries"],
        timeout=P["nsynth"]["timeout_s"],
    conda:
        ENV
    log:
        PATHS.log("nsynth_{split}"),
    shell:
        "python -m instrumentgen.nsynth.fetch --split {wildcards.split}"
        " --base-url {params.base_url} --archive-dir {params.archive_dir}"
        " --out-root {params.out_root} --retries {params.retries} --timeout {params.timeout}"
        " > {log} 2>&1"


rule synthesize:
    input:
        code("synth"),
    output:
        [directory(PATHS.synthetic_split(s)) for s in SPLITS],
        captions=PATHS.captions,
    params:
        out_root=parent_of_output,
        seed=P["seed"],
        per_family=settings.per_split(P["synthetic"]["instruments_per_family"], SPLITS),
        pitch_step=P["synthetic"]["pitch_step"],
        cell_dropout=settings.synthetic_cell_dropout(P),
        sample_rate=P["data"]["sample_rate"],
        note_seconds=P["data"]["note_seconds"],
        velocities=P["data"]["velocities"],
    threads: ALL_CORES
    conda:
        ENV
    log:
        PATHS.log("synthesize"),
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
        PATHS.manifest("{split}"),
    params:
        pitch_min=P["data"]["pitch_min"],
        pitch_max=P["data"]["pitch_max"],
        velocities=P["data"]["velocities"],
        sample_rate=P["data"]["sample_rate"],
        note_seconds=P["data"]["note_seconds"],
    conda:
        ENV
    log:
        PATHS.log("prune_{split}"),
    shell:
        "python -m instrumentgen.data.prune --split-dir {input.raw} --out {output}"
        " --pitch-min {params.pitch_min} --pitch-max {params.pitch_max}"
        " --velocities {params.velocities} --sample-rate {params.sample_rate}"
        " --note-seconds {params.note_seconds} > {log} 2>&1"


rule resample:
    input:
        manifest=PATHS.manifest("{split}"),
        code=code("data/resample.py"),
    output:
        audio=PATHS.store_audio("{split}"),
        index=PATHS.store_index("{split}"),
    params:
        target_rate=P["resample"]["target_rate"],
        quality=P["resample"]["quality"],
        chunk_notes=P["resample"]["chunk_notes"],
        sample_rate=P["data"]["sample_rate"],
        note_seconds=P["data"]["note_seconds"],
    threads: ALL_CORES
    conda:
        ENV
    log:
        PATHS.log("resample_{split}"),
    shell:
        "python -m instrumentgen.data.resample --manifest {input.manifest}"
        " --out-audio {output.audio} --out-index {output.index}"
        " --target-rate {params.target_rate} --quality {params.quality}"
        " --chunk-notes {params.chunk_notes} --sample-rate {params.sample_rate}"
        " --note-seconds {params.note_seconds} --workers {threads} > {log} 2>&1"


rule data_summary:
    input:
        manifests=expand(PATHS.manifest("{split}"), split=SPLITS),
        code=code("data/summary.py"),
    output:
        table=report(PATHS.data_summary, caption="../report/data_summary.rst", category="Data"),
        figure=report(PATHS.data_coverage, caption="../report/data_coverage.rst", category="Data"),
    conda:
        ENV
    log:
        PATHS.log("data_summary"),
    shell:
        "python -m instrumentgen.data.summary --manifests {input.manifests}"
        " --table {output.table} --figure {output.figure} > {log} 2>&1"
