"""Is an address reachable only from this machine?  (Decides whether the app may start without sign-in.)"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ``::1`` and ``localhost``.

    Anything else, including host names other than ``localhost`` and ``0.0.0.0`` (every interface),
    counts as reachable from outside.
    """
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
