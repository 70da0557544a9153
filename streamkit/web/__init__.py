"""The worker's web server: table views, ``/api/status``, ``/metrics``, health and the
dashboard. Needs the ``web`` extra (starlette, uvicorn, prometheus-client); the worker
starts it with :func:`streamkit.web.server.serve` unless ``App(web_enabled=False)``.
See docs/web.md.

Your own views (``@app.page``) are declared with what this package gives without the
extra: :class:`View` (Faust's ``faust.web.View``), :class:`Request`, :class:`Response`
and the errors of :mod:`streamkit.web.exceptions`.
"""
from streamkit.web import exceptions
from streamkit.web.views import Request, Response, View, Web, gives_model, takes_model

__all__ = ["Request", "Response", "View", "Web", "exceptions", "gives_model", "takes_model"]
