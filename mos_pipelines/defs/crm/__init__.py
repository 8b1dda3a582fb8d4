"""The CRM's webhook deliveries as an asset, a job and a sensor (logic: ``mos_pipelines.crm.webhooks``)."""
