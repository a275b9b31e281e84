"""HTTP pieces every service shares, one concern per module:

* ``problems``: RFC 9457 problem documents, and the middleware that maps every error to
  one (with the request id, the canonical log line and the latency metric);
* ``reading``: reading and validating request input (JSON bodies, fields, query values);
* ``operational``: ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json`` and
  ``base_app``, the application every service starts from.
"""
