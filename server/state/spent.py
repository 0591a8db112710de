"""Spent grants: a grant opens one stream, on whichever replica the socket lands."""

from __future__ import annotations

from typing import Protocol

from server.state.store import CLOCK_SKEW_S, PREFIX, MemoryStore, RedisStore, Store


class SpentGrants(Protocol):
    async def spend(self, grant_id: str, expires_at: float) -> bool:
        """Mark a grant used until it expires; False when it already was."""
        ...


class MemorySpentGrants:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self._spent: dict[str, float] = {}
        self.store.pruned(self.prune)

    def prune(self, now: float) -> None:
        self._spent = {k: exp for k, exp in self._spent.items() if exp > now}

    def sizes(self) -> dict[str, int]:
        return {"spent": len(self._spent)}

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        now = self.store.tick()
        if self._spent.get(grant_id, 0.0) > now:
            return False
        self._spent[grant_id] = expires_at
        return True


class RedisSpentGrants:
    """One key per spent grant, set only if absent, expiring with the grant (plus the replicas' clock skew)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    @staticmethod
    def key(grant_id: str) -> str:
        return PREFIX + "spent:" + grant_id

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        ttl_ms = max(1, int((expires_at - self.store.clock() + CLOCK_SKEW_S) * 1000))
        async with self.store.guard():
            return bool(await self.store.redis.set(self.key(grant_id), "1", nx=True, px=ttl_ms))


def build_spent_grants(store: Store) -> SpentGrants:
    return MemorySpentGrants(store) if isinstance(store, MemoryStore) else RedisSpentGrants(store)
