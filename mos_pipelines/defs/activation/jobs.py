"""One job per destination: it materializes only that destination's delivery asset."""

import dagster as dg

from mos_pipelines.defs.activation.assets import CONFIG
from mos_pipelines.defs.activation.gating import delivery_key


def job_name(destination: str) -> str:
    return f"activate__{destination}"


activation_jobs = {
    name: dg.define_asset_job(
        name=job_name(name),
        selection=dg.AssetSelection.assets(delivery_key(name)),
        description=f"Deliver `{name}`: send what changed in its sync model since the last acknowledged state.",
        tags={"mos/destination": name},
    )
    for name in CONFIG.destinations
}
jobs = list(activation_jobs.values())  # a list, so the defs loader finds them
