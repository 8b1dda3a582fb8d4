"""The dbt project as Dagster sees it: manifest preparation and the asset translator."""
