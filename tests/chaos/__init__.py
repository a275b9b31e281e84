"""The fault suite (issue 13): ``make chaos`` / ``python -m tests.chaos``.

Its own PostgreSQL and RabbitMQ (``infra``), the stack on them as ``make up`` runs it
(``stack``), operators driving the APIs with every answer recorded (``operators``), real
OCSP requests and the 50 ms prober (``ocsp``), the faults (``scenarios``) and the ledger
(``ledger``). No module here is named test_*: pytest collects none of it; the short
version inside ``make test`` is tests/e2e/test_chaos_short.py.
"""
