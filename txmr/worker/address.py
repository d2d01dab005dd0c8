"""
How a worker names its driver: the forms an address takes on the command
line, turned into a Twisted client endpoint string.

It only rewrites text; parsing the endpoint string (and refusing a bad
one) is C{clientFromString}'s job.
"""

import re


def client_endpoint_string(address):
    """
    The Twisted client endpoint string for a driver address given as
    C{http://HOST:PORT} (the seed's form), C{HOST:PORT}, or an endpoint string.
    """
    address = address.strip()
    match = re.match(r"^(?:https?://)?(\[[^\]]+\]|[^:/\[\]=]+):(\d+)/?$", address)
    if match:
        host, port = match.groups()
        host = host.strip("[]").replace(":", "\\:")
        return f"tcp:host={host}:port={port}"
    if re.match(r"^\d+$", address):
        return f"tcp:host=127.0.0.1:port={address}"
    return address
