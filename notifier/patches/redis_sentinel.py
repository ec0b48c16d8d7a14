"""redis-py's Sentinel pool, counting each time the primary it follows moves."""

from __future__ import annotations

from typing import Any

from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelConnectionPoolProxy


class _CountingProxy(SentinelConnectionPoolProxy):
    """The pool's view of the primary, counting each time it moves to another address."""

    moves = 0

    def get_master_address(self) -> Any:
        before = self.master_address
        found = super().get_master_address()  # type: ignore[no-untyped-call]
        if before is not None and found != before:
            self.moves += 1
        return found


class FollowingPool(SentinelConnectionPool):
    """A sentinel pool whose :attr:`moves` tells a caller that the primary changed meanwhile."""

    asked = float("-inf")  # when a refused write last asked the sentinels (monotonic)

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self.proxy = self.counted = _CountingProxy(  # type: ignore[no-untyped-call]
            connection_pool=self,
            is_master=self.is_master,
            check_connection=self.check_connection,
            service_name=service_name,
            sentinel_manager=sentinel_manager,
        )
        self.connection_kwargs["connection_pool"] = self.proxy

    @property
    def moves(self) -> int:
        return self.counted.moves
