"""The REST API adapter (FastAPI): `create_app(app)` builds it; `leadledger serve` runs it under Uvicorn."""

from leadledger.api.app import create_app

__all__ = ["create_app"]
