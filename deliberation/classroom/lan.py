"""This machine's address on the local network, for join links that students' phones can open.

Standard library only: settings.py imports it (in DEBUG the address joins ALLOWED_HOSTS).
"""

import ipaddress
import socket

# connect() on a UDP socket sends nothing: it only picks the interface that would route there.
_PROBES = ("10.255.255.255", "192.168.255.255", "172.31.255.255")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str | None:
    """The IPv4 address of the interface that reaches private networks, or None (offline, or
    only loopback)."""
    for probe in _PROBES:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((probe, 9))
                address = udp.getsockname()[0]
            except OSError:
                continue
        if address and not is_loopback(address) and address != "0.0.0.0":
            return address
    return None
