"""The fastapi-users peer app of the benchmark: a standard fastapi-users
setup serving its own GET /users/me, run from its own pinned virtualenv
(bench/.peer-venv) because fastapi-users-db-sqlalchemy pins SQLAlchemy <2.1.

`venv` and `runner` use the standard library only, so the harness imports them from
the main .venv; `models`, `app` and `seed` only ever run in the peer's venv.
"""
