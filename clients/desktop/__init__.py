"""The provider's desktop client: *Activare* with the licence serial, then *Conectare
online* over mutual TLS with a status bar showing the semaphore.

Run as ``python -m clients.desktop`` (the wizard) or with a subcommand: ``activate``,
``connect``, ``status``, ``wizard``. Modules: :mod:`.activation` (serial entry, house
choice, the local activation file), :mod:`.keygen` (the activation call),
:mod:`.tls` (the client certificate and trust), :mod:`.online` (the online channel and its
heartbeat), :mod:`.statusbar` and :mod:`.messages` (what the provider reads, ro/en),
:mod:`.wizard` (the terminal wizard), :mod:`.transport` (HTTP over http.client).
"""
