"""``python -m qvi_app``: the ``qvi`` command line."""

from qvi_app.cli import run

if __name__ == "__main__":        # worker processes (spawn) import this module without running it
    run()
