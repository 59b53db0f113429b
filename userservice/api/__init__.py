"""HTTP layer: routers, dependencies, schemas and error handlers."""
