"""`make test-fresh`: the README's `make test` on a minimal Debian 12, as a new user would.

See ``__main__.py`` (``python3 -m deploy.fresh --help``). Standard library only: it runs
on the host with the system's python3, before anything of the project is installed.
"""
