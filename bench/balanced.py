"""`python -m bench.balanced APP PORT WORKERS`: uvicorn with one socket per worker,
as `userservice serve` runs (userservice/listeners.py), for the ceiling and the
peer. Same server, same worker count, and the same spread of connections over the
workers: with uvicorn's one shared socket, wrk's connections may land 63/1 on two
workers, which halves any app's throughput for that run."""

from __future__ import annotations

import sys

from userservice.listeners import run_balanced


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m bench.balanced APP PORT WORKERS", file=sys.stderr)
        return 2
    app, port, workers = argv
    run_balanced(
        app,
        host="127.0.0.1",
        port=int(port),
        workers=int(workers),
        access_log=False,
        server_header=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
