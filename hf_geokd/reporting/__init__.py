"""PNG figures and markdown reports (Jinja templates in ``hf_geokd/templates/reports``)."""
