"""Erlang C: the M/M/c queue behind the staffing advice.

Callers arrive at random (Poisson, ``rate`` an hour), each holds a supporter for an
exponentially distributed time of mean ``handling`` seconds, and a caller who finds every
one of ``servers`` supporters busy waits (nobody hangs up) for the first one free. The
offered load is ``a = rate * handling / 3600`` erlangs. Then:

* the probability that a caller waits at all is Erlang's C formula, ``C(c, a)``;
* the service level, the share of callers reaching a free supporter within ``t`` seconds,
  is ``1 - C * exp(-(c * mu - rate) * t)`` with ``mu = 1 / handling``;
* the advice is the smallest ``c`` whose service level meets the target.

``C`` is computed from the Erlang B recursion ``B(0) = 1``, ``B(n) = a B(n-1) / (n + a
B(n-1))`` and ``C = c B / (c - a (1 - B))``: every step stays within 0..1, so a load of
thousands of erlangs neither overflows (``a**c / c!``) nor loses its digits to
cancellation, unlike the textbook sum. At or above ``c = a`` the queue grows without end:
every caller waits (``C = 1``, service level 0).
"""

from __future__ import annotations

import math

#: No advice beyond this many servers: a number past it is a data error, not a roster.
MAX_SERVERS = 100_000


def erlang_b(servers: int, load: float) -> float:
    """Erlang B: the blocking probability of ``servers`` lines offered ``load`` erlangs."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must not be negative")
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def erlang_c(servers: int, load: float) -> float:
    """Erlang C: the probability that a caller waits (1 when ``servers <= load``)."""
    if load <= 0:
        return 0.0
    if servers <= load:
        return 1.0
    blocking = erlang_b(servers, load)
    return servers * blocking / (servers - load * (1 - blocking))


def service_level(servers: int, rate: float, handling: float, seconds: float) -> float:
    """The share of callers reaching a free server within ``seconds``: ``rate`` callers an
    hour, ``handling`` mean seconds each."""
    if rate <= 0:
        return 1.0
    load = rate * handling / 3600
    waits = erlang_c(servers, load)
    if waits >= 1.0:
        return 0.0
    # c*mu - lambda, per second
    drain = (servers - load) / handling
    return 1.0 - waits * math.exp(-drain * seconds)


def mean_wait(servers: int, rate: float, handling: float) -> float:
    """The mean wait in seconds (ASA), infinite when the queue grows without end."""
    if rate <= 0:
        return 0.0
    load = rate * handling / 3600
    if servers <= load:
        return math.inf
    return erlang_c(servers, load) * handling / (servers - load)


def servers_needed(rate: float, handling: float, target: float, seconds: float) -> int:
    """The smallest number of servers whose service level is at least ``target`` (0..1):
    0 when nobody calls. ValueError for a target of 1 or more (never met) or past
    MAX_SERVERS."""
    if not 0 < target < 1:
        raise ValueError("the target must be a share between 0 and 1, exclusive")
    if rate <= 0 or handling <= 0:
        return 0
    load = rate * handling / 3600
    servers = max(1, math.floor(load) + 1)
    blocking = erlang_b(servers, load)  # then one step of the recursion per server more
    while True:
        waits = servers * blocking / (servers - load * (1 - blocking))
        if 1.0 - waits * math.exp(-(servers - load) / handling * seconds) >= target:
            return servers
        servers += 1
        if servers > MAX_SERVERS:
            raise ValueError(f"more than {MAX_SERVERS} servers needed")
        blocking = load * blocking / (servers + load * blocking)
