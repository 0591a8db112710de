"""Wiro's shared state: the task registry (any replica ends any task; every replica's reaper kills tasks past their
deadline) and the nonce, increasing across replicas. A concern of the shared state (server/state.py) that only
Wiro has, so it lives here, with a memory and a Redis implementation held to one contract by tests/test_state.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from server.state import PREFIX, MemoryStore, RedisStore, State, Store

# The name of this concern in a State.
CONCERN = "wiro-tasks"
# How long a task's shared record outlives its deadline (s): an end call racing the reaper still finds the task.
KEEP_AFTER_S = 3600


@dataclass(frozen=True)
class WiroTask:
    task_id: str
    token: str
    handle: str
    deadline: float  # Unix seconds
    # Kills tried and failed so far, by any process (counted in the shared record, so a replica that gives up on
    # a task leaves nothing of it behind in its own memory).
    attempts: int = 0


class TaskRegistry(Protocol):
    async def put(self, task: WiroTask) -> None: ...

    async def get(self, task_id: str) -> WiroTask | None: ...

    async def by_handle(self, handle: str) -> WiroTask | None: ...

    async def due(self, now: float, limit: int = 50) -> list[WiroTask]:
        """Tasks whose deadline has passed, whoever started them."""
        ...

    async def claim(self, task_id: str, lease_s: float) -> bool:
        """Take the right to kill `task_id` for `lease_s` seconds; False when another caller holds it. A replica
        that dies while killing loses its lease, and the task is taken again."""
        ...

    async def postpone(self, task: WiroTask, deadline: float) -> None:
        """A kill failed: count the attempt and try again at `deadline`. The claim is kept until then: a sweep that
        read the task before this call must not kill it again at once (and count an attempt on a stale copy). The
        record is kept at least as long after the new deadline as after the first."""
        ...

    async def drop(self, task: WiroTask) -> bool:
        """Forget the task; True when it was still registered."""
        ...

    async def next_nonce(self, now_ms: int) -> int:
        """max(now_ms, the last nonce + 1), atomically across every process sharing this state."""
        ...


def task_registry(state: State) -> TaskRegistry:
    """The registry kept in `state` (one per state: every provider given the state sees the same tasks)."""
    return state.concern(CONCERN, _build)


def _build(store: Store) -> TaskRegistry:
    return MemoryTaskRegistry(store) if isinstance(store, MemoryStore) else RedisTaskRegistry(store)


class MemoryTaskRegistry:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self._tasks: dict[str, WiroTask] = {}
        self._handles: dict[str, str] = {}
        self._claims: dict[str, float] = {}
        self._nonce = 0
        self.store.pruned(self.prune)

    @property
    def clock(self) -> Callable[[], float]:
        return self.store.clock

    def prune(self, now: float) -> None:
        self._claims = {k: exp for k, exp in self._claims.items() if exp > now}

    def sizes(self) -> dict[str, int]:
        return {"tasks": len(self._tasks)}

    async def put(self, task: WiroTask) -> None:
        self._tasks[task.task_id] = task
        self._handles[task.handle] = task.task_id

    async def get(self, task_id: str) -> WiroTask | None:
        return self._tasks.get(task_id)

    async def by_handle(self, handle: str) -> WiroTask | None:
        task_id = self._handles.get(handle)
        return self._tasks.get(task_id) if task_id is not None else None

    async def due(self, now: float, limit: int = 50) -> list[WiroTask]:
        return [t for t in self._tasks.values() if t.deadline <= now][:limit]

    async def claim(self, task_id: str, lease_s: float) -> bool:
        now = self.clock()
        if task_id not in self._tasks or self._claims.get(task_id, 0.0) > now:
            return False
        self._claims[task_id] = now + lease_s
        return True

    async def postpone(self, task: WiroTask, deadline: float) -> None:
        held = self._tasks.get(task.task_id)
        if held is not None:
            self._tasks[held.task_id] = WiroTask(held.task_id, held.token, held.handle, deadline, held.attempts + 1)
            self._claims[held.task_id] = deadline
        else:
            self._claims.pop(task.task_id, None)

    async def drop(self, task: WiroTask) -> bool:
        self._claims.pop(task.task_id, None)
        self._handles.pop(task.handle, None)
        return self._tasks.pop(task.task_id, None) is not None

    async def next_nonce(self, now_ms: int) -> int:
        self._nonce = max(now_ms, self._nonce + 1)
        return self._nonce


_NONCE = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.max(tonumber(ARGV[1]), last + 1)
redis.call('SET', KEYS[1], string.format('%d', n))
return string.format('%d', n)
"""

# A task dropped meanwhile (killed by another process) stays dropped: HSET alone would bring back a key that
# holds only a deadline, with no expiry, that nothing would ever delete. The record and its handle expire
# KEEP_AFTER_S after the new deadline, as `put` set them after the first: else a kill postponed past that expiry
# found the task gone, and nothing killed it again or said so.
_POSTPONE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'deadline', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  redis.call('EXPIREAT', KEYS[1], ARGV[4])
  if redis.call('GET', KEYS[4]) == ARGV[1] then
    redis.call('EXPIREAT', KEYS[4], ARGV[4])
  end
else
  redis.call('DEL', KEYS[3])
end
return 1
"""


class RedisTaskRegistry:
    """A hash per task, a key per handle, a sorted set of deadlines, a key per claim and one for the nonce."""

    KEYS = PREFIX + "wiro:"
    DEADLINES = KEYS + "deadlines"
    NONCE = KEYS + "nonce"

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.redis = store.redis
        self._nonce = self.redis.register_script(_NONCE)
        self._postpone = self.redis.register_script(_POSTPONE)

    @classmethod
    def task_key(cls, task_id: str) -> str:
        return cls.KEYS + "task:" + task_id

    @classmethod
    def handle_key(cls, handle: str) -> str:
        return cls.KEYS + "handle:" + handle

    @classmethod
    def claim_key(cls, task_id: str) -> str:
        return cls.KEYS + "claim:" + task_id

    async def put(self, task: WiroTask) -> None:
        expire_at = int(task.deadline) + KEEP_AFTER_S
        async with self.store.guard():
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(
                self.task_key(task.task_id),
                mapping={"token": task.token, "handle": task.handle, "deadline": repr(task.deadline)},
            )
            pipe.expireat(self.task_key(task.task_id), expire_at)
            pipe.set(self.handle_key(task.handle), task.task_id, exat=expire_at)
            pipe.zadd(self.DEADLINES, {task.task_id: task.deadline})
            await pipe.execute()

    async def _task(self, task_id: str) -> WiroTask | None:
        data = await self.redis.hgetall(self.task_key(task_id))
        if not data:
            return None
        return WiroTask(task_id, data["token"], data["handle"], float(data["deadline"]), int(data.get("attempts", 0)))

    async def get(self, task_id: str) -> WiroTask | None:
        async with self.store.guard():
            return await self._task(task_id)

    async def by_handle(self, handle: str) -> WiroTask | None:
        async with self.store.guard():
            task_id = await self.redis.get(self.handle_key(handle))
            return await self._task(task_id) if task_id else None

    async def due(self, now: float, limit: int = 50) -> list[WiroTask]:
        async with self.store.guard():
            ids = await self.redis.zrangebyscore(self.DEADLINES, "-inf", now, start=0, num=limit)
            tasks = [await self._task(i) for i in ids]
            gone = [i for i, t in zip(ids, tasks, strict=True) if t is None]
            if gone:
                await self.redis.zrem(self.DEADLINES, *gone)
        return [t for t in tasks if t is not None]

    async def claim(self, task_id: str, lease_s: float) -> bool:
        async with self.store.guard():
            return bool(await self.redis.set(self.claim_key(task_id), "1", nx=True, px=int(lease_s * 1000)))

    async def postpone(self, task: WiroTask, deadline: float) -> None:
        keys = [self.task_key(task.task_id), self.DEADLINES, self.claim_key(task.task_id), self.handle_key(task.handle)]
        async with self.store.guard():
            hold_ms = max(1, int((deadline - self.store.clock()) * 1000))
            args = [task.task_id, repr(deadline), hold_ms, int(deadline) + KEEP_AFTER_S]
            await self._postpone(keys=keys, args=args)

    async def drop(self, task: WiroTask) -> bool:
        async with self.store.guard():
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(self.task_key(task.task_id))
            pipe.zrem(self.DEADLINES, task.task_id)
            pipe.delete(self.handle_key(task.handle))
            pipe.delete(self.claim_key(task.task_id))
            removed, *_ = await pipe.execute()
        return bool(removed)

    async def next_nonce(self, now_ms: int) -> int:
        async with self.store.guard():
            return int(await self._nonce(keys=[self.NONCE], args=[now_ms]))
