"""mixpilot HTTP API (FastAPI): `create_app(settings)` in `app.api.main`."""
