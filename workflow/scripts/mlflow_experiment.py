"""Create the MLflow experiment once, before the parallel training jobs."""
from cmhash.io import save_json
from cmhash.logs import setup_logging
from cmhash.tracking import ensure_experiment

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
try:
    experiment_id = ensure_experiment(sm.params.uri, sm.params.experiment)
except Exception as exc:  # tracking never blocks the pipeline: the files are the source of truth
    log.warning("MLflow experiment could not be created (%s); runs will not be tracked", exc)
    experiment_id = None
save_json(sm.output[0], {"experiment": sm.params.experiment, "experiment_id": experiment_id, "tracking_uri": sm.params.uri})
