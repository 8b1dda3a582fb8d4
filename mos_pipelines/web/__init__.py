"""The marketers' web app (`mos serve`): ``mos_pipelines.web.app.create_app``."""
