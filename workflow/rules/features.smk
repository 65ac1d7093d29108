# Features phase: frozen encoders (codec codes, CLAP embeddings) cached to Parquet, and the
# fixed-CLAP reference notes.


rule features:
    input:
        expand(f"{DATA}/features/reference/{{split}}.parquet", split=SPLITS),


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
