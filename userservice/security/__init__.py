"""Pure security primitives: no database, no HTTP."""
