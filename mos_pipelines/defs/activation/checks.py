"""The consent gates: every customer a sync model selects has consent for its destination's purpose.

They guard activation, so they live with it: a sync model without a consent purpose (notifications) selects no
customers and gets no check. The gate itself is ``mos_pipelines.quality.gates.consent_for_activation``.
"""

import dagster as dg

from mos_pipelines.configuration import load_activation
from mos_pipelines.defs.quality.checks import CONFIG, evaluate_gate
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.quality import gates
from mos_pipelines.quality.gates import ConsentTarget, consent_targets
from mos_pipelines.settings import WAREHOUSE_POOL

# The sync models that select customers, each with its consent purpose (config/activation.yaml sync_models).
CONSENT_TARGETS = consent_targets(load_activation().consent_targets())


def build_consent_check(target: ConsentTarget) -> dg.AssetChecksDefinition:
    asset = dg.AssetKey(target.table.split("."))
    name = gates.consent_check_name(target)

    @dg.asset_check(
        asset=asset,
        name=name,
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"Every customer in `{target.table}` has a `{CONFIG.consent_for_activation.consent_table}` row for "
        f"purpose `{target.purpose}` before anything is activated.",
    )
    def _check(context: dg.AssetCheckExecutionContext, mos: MosHome) -> dg.AssetCheckResult:
        return evaluate_gate(
            context,
            mos,
            name,
            asset,
            lambda con: gates.consent_for_activation(con, target, CONFIG.consent_for_activation),
        )

    return _check


consent_checks = [build_consent_check(target) for target in CONSENT_TARGETS]
