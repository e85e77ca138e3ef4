"""The service's own HTTP API (FastAPI on uvicorn): `socialpost api` serves
`api.app:create_app`."""
