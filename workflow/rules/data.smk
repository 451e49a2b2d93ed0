rule demo_data:
    """Simulate the LINCS-shaped demo in the Rosetta file schemas (seeded)."""
    output:
        **DEMO_RAW,
    log:
        f"{LOGS}/demo_data.log",
    benchmark:
        f"{BENCH}/demo_data.tsv"
    conda:
        ENVS["data"]
    threads: THREADS
    resources:
        **RES["default"],
    params:
        scale=config["demo"]["scale"],
        seed=config["demo"]["seed"],
        overrides=config["demo"]["overrides"],
    script:
        "../../scripts/demo_data.py"
