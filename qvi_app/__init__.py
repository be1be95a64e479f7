"""qvi: find sound effects by imitating them with your voice."""

__version__ = "0.22.0"
