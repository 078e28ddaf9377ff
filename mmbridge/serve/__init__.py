"""``mmbridge serve``: any provider behind an OpenAI-compatible HTTP API (FastAPI + uvicorn)."""
