"""Marketing mix model: weekly spend by channel and region → outcome through adstock and saturation curves.

Plain modules (no Dagster, no simulator): ``curves`` (NumPy transformations), ``data`` (weekly frames from the
marts, checks), ``model`` (the PyMC fit and its posterior summaries), ``optimize`` (the budget split under the
fitted curves), ``tables`` (the ``ml.mmm_*`` tables)."""
