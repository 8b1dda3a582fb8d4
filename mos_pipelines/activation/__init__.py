"""Channel activation: sync models to destinations, through a ledger that never sends a change twice.

Plain Python, no Dagster: ``delivery.deliver`` runs one destination on a warehouse connection;
``channels/`` holds email, webhook, ad audiences and Slack; ``ledger`` the state machine and audit;
``content`` email copy and the approval queue. Dagster wiring, and the gate decision the sensors take
over the Dagster instance (``gating``): ``mos_pipelines/defs/activation/``.
"""
