"""Test rig: throwaway PostgreSQL server, database templates, HTTP helpers."""
