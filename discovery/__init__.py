"""An open crystal-discovery engine: generate, screen, simulate, learn, review."""

__version__ = "0.1.0"
__distribution__ = "crystal-discovery"
