"""The wider networks a client also counts in. A client is its IPv4 address or its IPv6 /64 (server.sessions:
client_key), but one IPv6 user is often given far more than a /64: a /56 or a /48 (65,536 /64s), each of whose /64s
would otherwise get a whole limit of its own. So an IPv6 client counts in its /56 and its /48 too, each allowed
WIDER_FACTOR times the client's own limit: one site's many /64s share that, while a network whose /48 holds
unrelated users (a mobile carrier's) still gives each of them its /64's own limit, a few at a time."""

from __future__ import annotations

import ipaddress

# The prefixes an IPv6 /64 also counts in, narrowest first.
WIDER_PREFIXES = (56, 48)
# Each wider network is allowed this many times one client's limit.
WIDER_FACTOR = 3


def wider_clients(client: str) -> tuple[str, ...]:
    """The networks a client key also counts in: an IPv6 /64's /56 and /48 (as "2001:db8::/56"), nothing for an
    IPv4 address or any other key."""
    try:
        network = ipaddress.ip_network(client)
    except ValueError:
        return ()
    if not isinstance(network, ipaddress.IPv6Network) or network.prefixlen != 64:
        return ()
    return tuple(str(network.supernet(new_prefix=prefix)) for prefix in WIDER_PREFIXES)


def client_limits(client: str, per_minute: int) -> list[tuple[str, int]]:
    """The rate-limit buckets one request of `client` counts in, each with its limit: the client's own, then its
    wider networks'."""
    return [(client, per_minute), *((wide, WIDER_FACTOR * per_minute) for wide in wider_clients(client))]
