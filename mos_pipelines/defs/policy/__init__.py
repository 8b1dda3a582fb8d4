"""Policy as assets (logic in ``mos_pipelines.policy``, settings in ``config/policy.yaml``): ICP scores, lead
routing assignments and contact eligibility, each row stamped with the policy version."""
