# Listening phase (paper Section 4.2, Table 4): a webMUSHRA kit per profile (S2I MUSHRA trials: the
# test note as hidden reference, every variant and a random-weights anchor; T2I MOS pages: each
# variant's rendered phrase of a prompt), and Table 4 from webMUSHRA's result files once participants
# have rated (params listening.results; without them the table says "no ratings yet"). Beside them, the
# companion page: every generated instrument (and the S2I ground truth) to hear, see and play in a browser.


rule listening:
    input:
        PATHS.listening_kit,
        PATHS.table4_md,
        PATHS.companion,


rule listening_kit:
    input:
        unpack(listening_kit_inputs),
        code=code("listening/cli.py", exclude=UNUSED_ENCODER_CODE),
    output:
        directory(PATHS.listening_kit),
    params:
        test_id=f"instrumentgen_{PROFILE}",
        store=lambda wildcards, input: os.path.splitext(input.test_store[0])[0],
        pairs=listening_pairs,
        decoding=ANCHOR_DECODING_JSON,
        seed=P["seed"],
        note_seconds=P["data"]["note_seconds"],
        trials=LISTENING["mushra_trials"],
        prompts=LISTENING["mos_prompts"],
        lufs=LISTENING["target_lufs"],
    conda:
        ENV
    log:
        PATHS.log("listening_kit"),
    shell:
        "python -m instrumentgen.listening.cli --test-id {params.test_id} --test-store {params.store}"
        " --clap-audio {input.clap} {params.pairs} --anchor-like {input.anchor_like} --codec {input.codec}"
        " --note-seconds {params.note_seconds} --seed {params.seed} --mushra-trials {params.trials}"
        " --mos-prompts {params.prompts} --target-lufs {params.lufs} --decoding {params.decoding:q}"
        " --out {output} > {log} 2>&1"


rule table4:
    input:
        unpack(listening_results),
        kit=PATHS.listening_kit,
        code=code("listening/table4.py"),
    output:
        table=report(PATHS.table4_md, caption="../report/table4.rst", category="Listening"),
        others=multiext(PATHS.table4, ".tex", ".csv", "_pairs.csv"),
        metrics=PATHS.listening_metrics,
        figure=report(PATHS.table4_png, caption="../report/table4.rst", category="Listening"),
    params:
        results=f"--results {LISTENING['results']}" if LISTENING["results"] else "",
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
    conda:
        ENV
    log:
        PATHS.log("table4"),
    shell:
        "python -m instrumentgen.listening.table4 --kit {input.kit}/kit.json {params.results}"
        " --out-dir {params.out_dir} --metrics {output.metrics} > {log} 2>&1"


rule companion_page:
    input:
        unpack(companion_inputs),
        static=COMPANION_STATIC,
        code=code("companion/__main__.py"),
    output:
        page=directory(PATHS.companion),
        cards=report(PATHS.companion_cards, caption="../report/companion.rst", category="Listening"),
    params:
        title=f"instrumentgen · {PROFILE} profile",
        store=lambda wildcards, input: os.path.splitext(input.test_store[0])[0],
        pairs=companion_pairs,
    threads: GEN_THREADS  # cards written at once
    conda:
        ENV
    log:
        PATHS.log("companion_page"),
    shell:
        "python -m instrumentgen.companion --title {params.title:q} --test-store {params.store}"
        " --prompts {input.prompts} {params.pairs} --workers {threads} --out {output.page} > {log} 2>&1"
        " && cp {output.page}/cards.csv {output.cards}"
