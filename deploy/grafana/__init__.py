"""Grafana dashboards for SIUI Access, written as code (``dashboards.py``) and committed as
the JSON that Grafana's file provisioning loads (``dashboards/*.json``)."""
