"""Lua scripts that change a job atomically inside Redis.

Every state change of a job happens in one of these scripts, so concurrent workers, retries of
a crashed file and a cancel from the API can never double-count a file or finish a job twice:
an outcome is written with HSETNX (first writer wins, retries find it and stop), and the same
script updates the counters, the state sorted sets and the metrics, and finishes the job when
the last file is in.

All scripts take the same KEYS (see :func:`script_keys`); times come from the Redis server's
clock (``TIME``) so that workers on machines with skewed clocks agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from redis import Redis
from redis.commands.core import Script

from service.jobs import keys

_COMMON: Final = """
local STATES = {queued = 6, running = 7, succeeded = 8, failed = 9, canceled = 10}

local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function move_state(job_id, state, expires_at)
  for _, index in pairs(STATES) do redis.call('ZREM', KEYS[index], job_id) end
  redis.call('ZADD', KEYS[STATES[state]], expires_at, job_id)
end

local function observe(histogram, seconds, bounds)
  local label = '+Inf'
  for _, bound in ipairs(bounds) do
    if seconds <= tonumber(bound) then label = bound; break end
  end
  redis.call('HINCRBY', histogram, label, 1)
  redis.call('HINCRBYFLOAT', histogram, 'sum', seconds)
  redis.call('HINCRBY', histogram, 'count', 1)
end

local function finish(job_id, state, job_bounds)
  local now = now_s()
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'result_ttl_s'))
  local expires_at = now + ttl
  redis.call('HSET', KEYS[1], 'status', state, 'finished_at', tostring(now),
             'expires_at', tostring(expires_at))
  if redis.call('HGET', KEYS[1], 'callback_url') then
    redis.call('HSET', KEYS[1], 'callback_state', 'pending')
  end
  redis.call('DEL', KEYS[3])
  for _, index in ipairs({1, 2, 4, 5}) do redis.call('EXPIRE', KEYS[index], ttl) end
  local idempotency = redis.call('HGET', KEYS[1], 'idempotency_ref')
  if idempotency and idempotency ~= '' then redis.call('EXPIRE', idempotency, ttl) end
  move_state(job_id, state, expires_at)
  if state ~= 'canceled' then
    observe(KEYS[13], now - tonumber(redis.call('HGET', KEYS[1], 'created_at')), job_bounds)
  end
end

local function open_status()
  local status = redis.call('HGET', KEYS[1], 'status')
  if not status then return nil, {-1, ''} end
  if status ~= 'queued' and status ~= 'running' then return nil, {0, status} end
  return status, nil
end
"""

BEGIN_FILE: Final = (
    _COMMON
    + """
-- ARGV: job id, file index. Marks the job running; {1, status} when the file should be run.
local status, answer = open_status()
if not status then return answer end
if redis.call('HEXISTS', KEYS[4], ARGV[2]) == 1 then return {0, status} end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', tostring(now_s()))
  move_state(ARGV[1], 'running', tonumber(redis.call('HGET', KEYS[1], 'expires_at')))
end
return {1, 'running'}
"""
)

RECORD_OUTCOME: Final = (
    _COMMON
    + """
-- ARGV: job id, index, outcome JSON, ok (1/0), error JSON, file seconds, file bounds JSON,
-- job bounds JSON. {1, status} recorded, {2, final status} recorded and the job finished,
-- {0, status} ignored (already recorded, or the job ended), {-1, ''} no such job.
local status, answer = open_status()
if not status then return answer end
if redis.call('HSETNX', KEYS[4], ARGV[2], ARGV[3]) == 0 then return {0, status} end
redis.call('HDEL', KEYS[3], ARGV[2])
local ok = ARGV[4] == '1'
if not ok then
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
end
redis.call('HINCRBY', KEYS[11], ok and 'files_succeeded' or 'files_failed', 1)
observe(KEYS[12], tonumber(ARGV[6]), cjson.decode(ARGV[7]))
local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
if done < tonumber(redis.call('HGET', KEYS[1], 'total')) then return {1, status} end
local state = 'succeeded'
if tonumber(redis.call('HGET', KEYS[1], 'failed') or '0') == done then state = 'failed' end
finish(ARGV[1], state, cjson.decode(ARGV[8]))
return {2, state}
"""
)

CANCEL: Final = (
    _COMMON
    + """
-- ARGV: job id. {1, 'canceled'}, {0, final status} when it had already ended, {-1, ''}.
local status, answer = open_status()
if not status then return answer end
finish(ARGV[1], 'canceled', {})
return {1, 'canceled'}
"""
)


def script_keys(job_id: str) -> list[str]:
    """The KEYS every script takes: the job's keys, the state sets, the stats keys."""
    return [
        *keys.job_keys(job_id),
        *keys.state_sets(),
        keys.STATS,
        keys.FILE_HISTOGRAM,
        keys.JOB_HISTOGRAM,
    ]


@dataclass(frozen=True)
class ScriptAnswer:
    """``code`` as documented on each script; ``status`` the job's status after it."""

    code: int
    status: str


class JobScripts:
    """The scripts registered on one Redis client (EVALSHA, loaded again after a restart)."""

    def __init__(self, redis: Redis) -> None:
        self._begin_file: Script = redis.register_script(BEGIN_FILE)
        self._record_outcome: Script = redis.register_script(RECORD_OUTCOME)
        self._cancel: Script = redis.register_script(CANCEL)

    def begin_file(self, job_id: str, index: int) -> ScriptAnswer:
        return _answer(self._begin_file(script_keys(job_id), [job_id, index]))

    def record_outcome(
        self,
        job_id: str,
        index: int,
        outcome_json: str,
        error_json: str | None,
        file_seconds: float,
        bounds: tuple[tuple[float, ...], tuple[float, ...]],
    ) -> ScriptAnswer:
        """``bounds`` are the file and job histogram bucket bounds (seconds)."""
        file_bounds, job_bounds = (json.dumps([bound_label(b) for b in group]) for group in bounds)
        arguments: list[str | int] = [
            job_id,
            index,
            outcome_json,
            "0" if error_json is not None else "1",
            error_json or "",
            repr(file_seconds),
            file_bounds,
            job_bounds,
        ]
        return _answer(self._record_outcome(script_keys(job_id), arguments))

    def cancel(self, job_id: str) -> ScriptAnswer:
        return _answer(self._cancel(script_keys(job_id), [job_id]))


def bound_label(value: float) -> str:
    """Bucket bounds as the text the histogram fields are named by (``0.5``, ``10``)."""
    return f"{value:g}"


def _answer(raw: object) -> ScriptAnswer:
    assert isinstance(raw, list) and len(raw) == 2
    code, status = raw
    text = status.decode() if isinstance(status, bytes) else str(status)
    return ScriptAnswer(code=int(code), status=text)
