"""What a process makes once (its providers, their connections and clients): once, however many
threads ask at the same time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from notifier.runtime import PerProcess


def test_threads_asking_at_once_share_what_one_made() -> None:
    made: list[object] = []
    release = threading.Event()

    def make() -> object:
        release.wait(5)  # slow, as building boto3 clients is: every thread asks meanwhile
        made.append(object())
        return made[-1]

    shared = PerProcess(make)
    with ThreadPoolExecutor(16) as pool:
        got = [pool.submit(shared.get) for _ in range(16)]
        release.set()
        results = {id(f.result(timeout=10)) for f in got}
    assert len(made) == 1
    assert results == {id(made[0])}
    assert shared.get() is made[0]
