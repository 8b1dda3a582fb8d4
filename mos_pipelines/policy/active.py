"""Which policy is in effect: the one ``mos policy apply`` wrote to ``$MOS_HOME/policy/active.yaml``, else the
configured one (``config/policy.yaml`` with any ``MOS_POLICY_CONFIG`` override merged over it).

The applied file holds the complete normalised settings (every value, not a partial override), so it does not
change meaning when the bundled file changes, and it wins over ``MOS_POLICY_CONFIG``: a policy that was applied
(validated, diffed, logged in ``policy.applied``) is not silently altered by an environment variable. While an
applied policy exists the variable is ignored and ``mos policy show`` says so; removing the file (or applying
another) changes the policy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mos_pipelines.configuration import DOMAINS, load_policy
from mos_pipelines.configuration.loader import load_documents, read_document
from mos_pipelines.configuration.policy import PolicySettings


def active_file(mos_home: Path) -> Path:
    """Where ``mos policy apply`` writes the applied policy."""
    return Path(mos_home) / "policy" / "active.yaml"


@dataclass(frozen=True)
class ActivePolicy:
    settings: PolicySettings
    applied_file: Path | None  # $MOS_HOME/policy/active.yaml when a policy was applied, else None
    ignored_override: str | None  # MOS_POLICY_CONFIG's value when an applied policy makes it ignored

    def describe(self) -> str:
        """Which file(s) the active policy comes from, for a person."""
        if self.applied_file is not None:
            return f"applied: {self.applied_file}"
        return "configured: " + " + ".join(str(f) for f in self.settings.files)


def load_active(mos_home: Path) -> ActivePolicy:
    """The policy in effect for the warehouse under ``mos_home`` (see the module docstring)."""
    path = active_file(mos_home)
    if path.exists():
        settings = load_documents(PolicySettings, [read_document(path)])
        return ActivePolicy(settings, path, os.environ.get(DOMAINS["policy"].env) or None)
    return ActivePolicy(load_policy(), None, None)
