"""Run one destination's delivery directly: ``python -m mos_pipelines.activation --destination NAME``.

No Dagster and no gate check: this is the plain engine, for benchmarks, fault tests and operators who
already checked the gates. Everyday runs go through the sensors or ``mos activation run``, which
refuse to deliver behind a failed quality gate. Prints the delivery report as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from mos_pipelines import warehouse
from mos_pipelines.activation.channels import DeliveryError
from mos_pipelines.activation.delivery import deliver
from mos_pipelines.configuration import ConfigError, load_activation
from mos_pipelines.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mos_pipelines.activation", description=__doc__.splitlines()[0])
    parser.add_argument("--destination", required=True)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--dry-run", action="store_true", default=None)
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        config = load_activation()
        con = warehouse.connect(settings.warehouse_path)
    except (ConfigError, warehouse.WarehouseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = deliver(
            con,
            args.destination,
            config,
            settings.mos_home,
            args.run_id or f"direct-{uuid.uuid4()}",
            dry_run=args.dry_run,
            log=lambda m: print(m, file=sys.stderr),
        )
    except (DeliveryError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    print(json.dumps(report.as_dict(), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
