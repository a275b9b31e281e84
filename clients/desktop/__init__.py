"""The provider's desktop client: *Activare* with the licence serial, then *Conectare
online* over mutual TLS with a status bar showing the semaphore; as a window
(``python -m clients.desktop gui``) or in the terminal (the wizard, ``activate``,
``connect``, ``status``), both on the same domain code.

Domain (no Tk): :mod:`.activation` (serial entry, the local activation file),
:mod:`.choices` and :mod:`.serialbox` (the house list and the serial's four boxes),
:mod:`.keygen` (the activation call), :mod:`.tls` and :mod:`.connection` (the client
certificate and trust), :mod:`.online` (the online channel and its keep-online loop),
:mod:`.backoff` (when to try again), :mod:`.statusview` and :mod:`.messages` with the
``texts_*`` modules (what the provider reads, ro/en), :mod:`.background` (work off the
window's thread), :mod:`.transport` (HTTP over http.client). Faces: :mod:`.wizard` and
:mod:`.statusbar` (the terminal), :mod:`.gui` (the window).
"""
