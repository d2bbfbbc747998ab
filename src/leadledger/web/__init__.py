"""The web app (Jinja2 + htmx) for reps, managers, marketing and ops: an adapter over the services, like the API."""

from leadledger.web.app import create_web
from leadledger.web.context import WebOptions

__all__ = ["WebOptions", "create_web"]
