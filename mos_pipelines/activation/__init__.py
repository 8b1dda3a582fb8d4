"""Channel activation: sync models to destinations, through a ledger that never sends a change twice.

Plain Python, no Dagster: ``delivery.deliver`` runs one destination on a warehouse connection;
``channels/`` holds email, webhook, ad audiences and Slack; ``ledger`` the state machine and audit;
``content`` email copy and the approval queue; ``gating`` the decision the sensors take (which reads
a Dagster instance, but declares nothing). Dagster wiring: ``mos_pipelines/defs/activation/``.
"""
