"""The review web app (`discovery serve DIR`)."""

from discovery.frontends.web.app import create_app

__all__ = ["create_app"]
