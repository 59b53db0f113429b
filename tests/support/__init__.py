"""What tests share, and the only place for it: the throwaway PostgreSQL server and
database templates, accounts, OAuth clients and flows, the shape of error answers,
the real command as a subprocess, and the wired parts of an app. Fixtures live in
the conftest.py files; a test file never imports another test file."""
