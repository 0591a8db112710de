"""Spent grants: a grant opens one stream, on whichever replica the socket lands."""

from __future__ import annotations

from typing import Protocol

from server.state.store import CLOCK_SKEW_S, PREFIX, MemoryStore, RedisStore, Store


class SpentGrants(Protocol):
    async def spend(self, grant_id: str, expires_at: float) -> bool:
        """Mark a grant used until it expires; False when it already was."""
        ...

    async def spend_by(self, grant_id: str, expires_at: float, holder: str) -> bool:
        """`spend`, recording who spent it (a socket's lease id), so that `unspend` can undo this spend alone."""
        ...

    async def unspend(self, grant_id: str, holder: str) -> bool:
        """Make the grant usable again if `holder` is who spent it (atomic: never another's spend); True when it
        was. For a call that failed on the caller's side but may have run in the store: a slow store, not a down
        one, can mark a grant spent after the socket that asked was told 503, and the grant must stay usable."""
        ...


class MemorySpentGrants:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self._spent: dict[str, float] = {}
        # Who spent a grant, when `spend_by` said (else "1", as in Redis).
        self._holders: dict[str, str] = {}
        self.store.pruned(self.prune)

    def prune(self, now: float) -> None:
        self._spent = {k: exp for k, exp in self._spent.items() if exp > now}
        self._holders = {k: holder for k, holder in self._holders.items() if k in self._spent}

    def sizes(self) -> dict[str, int]:
        return {"spent": len(self._spent)}

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        now = self.store.tick()
        if self._spent.get(grant_id, 0.0) > now:
            return False
        self._spent[grant_id] = expires_at
        self._holders.pop(grant_id, None)
        return True

    async def spend_by(self, grant_id: str, expires_at: float, holder: str) -> bool:
        spent = await self.spend(grant_id, expires_at)
        if spent:
            self._holders[grant_id] = holder
        return spent

    async def unspend(self, grant_id: str, holder: str) -> bool:
        if grant_id not in self._spent or self._holders.get(grant_id, "1") != holder:
            return False
        del self._spent[grant_id]
        self._holders.pop(grant_id, None)
        return True


_UNSPEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisSpentGrants:
    """One key per spent grant, set only if absent, expiring with the grant (plus the replicas' clock skew); its
    value is who spent it ("1" when nobody in particular)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._unspend = store.redis.register_script(_UNSPEND)

    @staticmethod
    def key(grant_id: str) -> str:
        return PREFIX + "spent:" + grant_id

    async def spend(self, grant_id: str, expires_at: float) -> bool:
        return await self.spend_by(grant_id, expires_at, "1")

    async def spend_by(self, grant_id: str, expires_at: float, holder: str) -> bool:
        ttl_ms = max(1, int((expires_at - self.store.clock() + CLOCK_SKEW_S) * 1000))
        async with self.store.guard():
            return bool(await self.store.redis.set(self.key(grant_id), holder, nx=True, px=ttl_ms))

    async def unspend(self, grant_id: str, holder: str) -> bool:
        async with self.store.guard():
            return bool(int(await self._unspend(keys=[self.key(grant_id)], args=[holder])))


def build_spent_grants(store: Store) -> SpentGrants:
    return MemorySpentGrants(store) if isinstance(store, MemoryStore) else RedisSpentGrants(store)
