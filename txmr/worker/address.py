"""
How a worker names its driver: the forms an address takes on the command
line, turned into a Twisted client endpoint.

L{client_endpoint_string} only rewrites text; parsing a plain endpoint
string (and refusing a bad one) is C{clientFromString}'s job.  A TLS
address (C{ssl:host=H:port=P}, as the driver's port file writes it,
C{tls:H:P}, or C{https://H:P}) is read here instead, field by field, and
made into an endpoint that verifies the driver (L{txmr.tls}): Twisted's own
C{ssl:} client endpoint would check no certificate.
"""

import re
from dataclasses import dataclass

from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

from txmr.tls import CLIENT_SCHEMES, TLSConfigError, Trust, require_tls, scheme, \
    verified_endpoint


def client_endpoint_string(address):
    """
    The Twisted client endpoint string for a driver address given as
    C{http://HOST:PORT} (the seed's form), C{https://HOST:PORT} (TLS),
    C{HOST:PORT}, or an endpoint string.
    """
    address = address.strip()
    match = re.match(r"^(?:(https?)://)?(\[[^\]]+\]|[^:/\[\]=]+):(\d+)/?$", address)
    if match:
        web, host, port = match.groups()
        host = host.strip("[]").replace(":", "\\:")
        return f"{'ssl' if web == 'https' else 'tcp'}:host={host}:port={port}"
    if re.match(r"^\d+$", address):
        return f"tcp:host=127.0.0.1:port={address}"
    return address


def client_endpoint(reactor, address, trust=Trust()):
    """
    The endpoint of the driver at C{address}: for a TLS address, one that
    checks the driver's certificate as C{trust} says.

    @raise ValueError: (or C{TypeError}, C{KeyError}) C{address} is no
        endpoint.
    @raise TLSConfigError: TLS is asked for and cannot be had: pyOpenSSL is
        missing, the CA file is bad, or a TLS flag was given for a plain
        address (which would then be used in clear).
    """
    from twisted.internet import endpoints

    description = client_endpoint_string(address)
    if scheme(description) in CLIENT_SCHEMES:
        require_tls(f"--driver {address!r}")
        tls = TLSAddress.parse(description)
        return DriverEndpoint(
            verified_endpoint(reactor, tls.host, tls.port, trust, hostname=tls.hostname,
                              timeout=tls.timeout, bind_address=tls.bind_address), description)
    if trust.asked_for:
        raise TLSConfigError(f"--ca-file and --insecure-tls are for a TLS driver address "
                             f"(ssl:host=HOST:port=PORT or https://HOST:PORT), not {address!r}")
    return DriverEndpoint(endpoints.clientFromString(reactor, description), description)


@implementer(IStreamClientEndpoint)
class DriverEndpoint:
    """
    The driver's endpoint, named for what it is: C{ClientService} logs one
    line per attempt to reach it ("Scheduling retry 3 to connect the
    driver at tcp:host=...:port=5000 in 0.2 seconds"), which should say
    what the worker waits for rather than show an object's address.
    """

    def __init__(self, endpoint, description):
        self.endpoint = endpoint
        self.description = description

    def connect(self, factory):
        return self.endpoint.connect(factory)

    def __repr__(self):
        return f"the driver at {self.description}"


@dataclass(frozen=True)
class TLSAddress:
    """
    The fields of a TLS driver address.

    @ivar hostname: the name the certificate must bear, when it is not
        C{host} (a driver reached by IP address whose certificate names
        its DNS name).
    """

    host: str
    port: int
    hostname: str | None = None
    timeout: int = 30
    bind_address: str | None = None

    FIELDS = ("host", "port", "hostname", "timeout", "bindAddress")

    @classmethod
    def parse(cls, description):
        """
        @raise ValueError: a field is missing, unknown or malformed; trust
            is given by flags, not by Twisted's C{caCertsDir} or
            C{trustRoots} fields.
        """
        args, kwargs = _fields(description)
        for name, value in zip(("host", "port"), args):
            kwargs.setdefault(name, value)
        unknown = sorted(set(kwargs) - set(cls.FIELDS))
        if len(args) > 2 or unknown:
            raise ValueError(f"a TLS driver address takes {', '.join(cls.FIELDS)} (trust comes "
                             f"from --ca-file), not {', '.join(unknown) or args[2]}")
        if not kwargs.get("host") or "port" not in kwargs:
            raise ValueError("a TLS driver address needs a host and a port")
        return cls(host=kwargs["host"], port=int(kwargs["port"]),
                   hostname=kwargs.get("hostname"), timeout=int(kwargs.get("timeout", 30)),
                   bind_address=kwargs.get("bindAddress"))


def _fields(description):
    """
    The positional and keyword fields of an endpoint string after its
    scheme, split as Twisted splits them: C{:} between fields, the first
    C{=} after a key, C{\\} escaping the next character.
    """
    fields, key, current, escaped = [], None, "", False
    for ch in description:
        if escaped:
            current, escaped = current + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            fields.append((key, current))
            key, current = None, ""
        elif ch == "=" and key is None:
            key, current = current, ""
        else:
            current += ch
    fields.append((key, current))
    fields.pop(0)
    return ([value for key, value in fields if key is None],
            {key: value for key, value in fields if key is not None})
