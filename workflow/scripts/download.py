"""Download, verify and extract the published raw archives of one dataset."""
from cmhash.data.sources_catalog import fetch_raw
from cmhash.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
cfg, settings = snakemake.params.cfg, snakemake.params.settings  # noqa: F821
options = cfg["download"] if isinstance(cfg.get("download"), dict) else {}
fetch_raw(cfg["source"], snakemake.output[0], archive_dir=settings.get("archive_dir", "data/archives"),  # noqa: F821
          lock_file=settings.get("lock_file", "data/checksums.lock.json"), data_root=settings.get("data_root"),
          retries=settings.get("retries", 5), progress=False, options=options)
