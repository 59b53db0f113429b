"""Domain logic: no FastAPI, no SQL."""
