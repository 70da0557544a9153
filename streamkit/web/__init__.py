"""The worker's web server: table views, ``/api/status``, ``/metrics``, health and the
dashboard. Needs the ``web`` extra (starlette, uvicorn, prometheus-client); the worker
starts it with :func:`streamkit.web.server.serve` unless ``App(web_enabled=False)``.
See docs/web.md.
"""
