"""S12/S11: the device-cookie key is made once, even by replicas starting at the
same moment, so every replica accepts every other's cookies; sealed at rest when
a key-encryption secret is set."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from userservice.db.engine import build_engine, open_database
from userservice.db.models import ServerSecret
from userservice.services.at_rest import AtRest
from userservice.services.devices import DeviceCookies

REPLICAS = 4
SECRET = "a-long-random-key-encryption-secret-0123456789"


def test_replicas_starting_together_share_one_key(db_url: str) -> None:
    engines = [build_engine(db_url) for _ in range(REPLICAS)]
    replicas = [DeviceCookies(open_database(engine), AtRest(SECRET)) for engine in engines]
    start = threading.Barrier(REPLICAS)

    def boot(replica: DeviceCookies) -> None:
        start.wait(timeout=30)
        replica.ensure()

    try:
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(boot, replicas))
        cookie = replicas[0].issue(uuid.uuid4(), None)
        assert cookie is not None
        assert all(replica.read(cookie) is not None for replica in replicas)
        with engines[0].connect() as conn:
            assert conn.execute(select(func.count()).select_from(ServerSecret)).scalar() == 1
            stored = conn.execute(select(ServerSecret.value)).scalar_one()
        assert stored.startswith("enc:v1:")
    finally:
        for engine in engines:
            engine.dispose()
