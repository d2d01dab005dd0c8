"""
TLS between txmr's daemons: whether it can be had here, and how a worker
checks that the peer it gives its secret to is its driver.

Twisted's own C{ssl:} client endpoint checks no certificate unless it is
also given a host name and a CA directory: a worker that connected with it
would hand its secret, and the job's data, to whoever answered.  So a
worker connects to a TLS driver through L{verified_endpoint}:
C{optionsForClientTLS} checks the certificate against the CAs of
C{--ca-file} (or the system's roots) and the address's host name or IP
address (with C{service_identity}); C{--insecure-tls} turns that off, in so
many words, and says so in the log.

pyOpenSSL is an extra (C{txmr[tls]}): a TLS address without it is refused
in one line that names the extra.  Twisted's TLS modules are imported only
here, and only when TLS is asked for.
"""

import re
from dataclasses import dataclass

from twisted.internet import error
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.protocols import policies
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

INSTALL = "pip install 'txmr[tls]'"

# Client endpoint schemes a worker reads as TLS: Twisted's ssl: (whose
# fields the driver's port file writes) and tls:.
CLIENT_SCHEMES = ("ssl", "tls")


class TLSConfigError(Exception):
    """
    TLS was asked for and cannot be had as asked: its message is the one
    line a daemon prints before it exits 2.
    """


def scheme(description):
    """
    The scheme of an endpoint string (C{"tcp"} of C{"tcp:5000"}).
    """
    return description.split(":", 1)[0].strip().lower()


def require_tls(what):
    """
    @raise TLSConfigError: pyOpenSSL (or service_identity, which checks host
        names) is not installed; the message names C{what} needed it.
    """
    try:
        import service_identity  # noqa: F401
        from twisted.internet import ssl  # noqa: F401
    except ImportError as e:
        raise TLSConfigError(f"{what} needs TLS support, which is not installed ({e.name} is "
                             f"missing): {INSTALL}") from e


def check_server(reactor, description):
    """
    Check that the server endpoint C{description} can listen with TLS:
    pyOpenSSL is there and its certificate and key load.  Parsing loads
    them; it does not listen.

    @raise TLSConfigError: it cannot.
    """
    require_tls(repr(description))
    from twisted.internet import endpoints

    try:
        endpoints.serverFromString(reactor, description)
    except Exception as e:
        raise TLSConfigError(f"{description!r}: cannot load its certificate or key: "
                             f"{_reason(e)}") from e


@dataclass(frozen=True)
class Trust:
    """
    Whom a worker believes to be its driver.

    @ivar ca_file: a PEM file of the CAs whose certificates it trusts (one
        or more); L{None}: the system's roots.
    @ivar insecure: check nothing (C{--insecure-tls}).
    """

    ca_file: str | None = None
    insecure: bool = False

    def __post_init__(self):
        if self.ca_file and self.insecure:
            raise TLSConfigError("--ca-file and --insecure-tls contradict each other: "
                                 "give one of them")

    @property
    def asked_for(self):
        """
        Whether a flag asked for TLS.
        """
        return bool(self.ca_file) or self.insecure

    def describe(self):
        if self.insecure:
            return "no verification (--insecure-tls)"
        if self.ca_file:
            return f"the CAs of --ca-file {self.ca_file}"
        return "the system's trusted roots (give --ca-file for a private CA)"


_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def load_ca_file(path):
    """
    The trust root of every certificate in a PEM file (a CA bundle may hold
    several; C{Certificate.loadPEM} would read only the first).

    @raise TLSConfigError: the file cannot be read or holds no certificate.
    """
    from twisted.internet import ssl

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TLSConfigError(f"cannot read --ca-file {path!r}: {e.strerror}") from e
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise TLSConfigError(f"--ca-file {path!r} holds no PEM certificate")
    try:
        certificates = [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception as e:
        raise TLSConfigError(f"--ca-file {path!r}: {_reason(e)}") from e
    return ssl.trustRootFromCertificates(certificates)


def verified_endpoint(reactor, host, port, trust, hostname=None, timeout=30,
                      bind_address=None):
    """
    A client endpoint to C{host}:C{port} that speaks TLS and, unless
    C{trust.insecure}, fails the connection when the certificate is not
    signed by a trusted CA or does not name C{hostname} (default C{host}).

    @raise TLSConfigError: TLS cannot be had here, or the CA file is bad.
    """
    require_tls("TLS to the driver")
    from twisted.internet import endpoints, ssl

    if trust.insecure:
        # CertificateOptions checks no certificate by default.
        creator = ssl.CertificateOptions()
    else:
        root = load_ca_file(trust.ca_file) if trust.ca_file else ssl.platformTrust()
        creator = ssl.optionsForClientTLS(hostname or host, trustRoot=root)
    tcp = endpoints.HostnameEndpoint(
        reactor, host, port, timeout=timeout,
        bindAddress=None if bind_address is None else (bind_address, 0))
    return ExplainingEndpoint(endpoints.wrapClientTLS(creator, tcp), f"{host}:{port}", trust,
                              hostname or host)


@implementer(IStreamClientEndpoint)
class ExplainingEndpoint:
    """
    A TLS client endpoint whose failed handshakes say why, in one line:
    OpenSSL's reason (C{certificate verify failed}) or service_identity's
    (the name does not match), and what the worker trusts.  The connection
    then ends as any lost connection does, and the worker tries again until
    it gives up: a driver may be started again with the right certificate.
    """

    def __init__(self, endpoint, where, trust, name):
        self.endpoint = endpoint
        self.where = where
        self.trust = trust
        self.name = name
        self.warned = False

    def connect(self, factory):
        if self.trust.insecure and not self.warned:
            self.warned = True
            log.warn("--insecure-tls: the certificate of the driver at {where} is not "
                     "checked; whoever answers there gets this worker's secret and tasks",
                     where=self.where)
        wrapper = policies.WrappingFactory(factory)
        # Its start and stop around every try would be noise.
        wrapper.noisy = False
        wrapper.protocol = lambda f, p: _Explaining(f, p, self)
        d = self.endpoint.connect(wrapper)
        d.addCallback(lambda protocol: protocol.wrappedProtocol)
        return d

    def __repr__(self):
        return f"<TLS to {self.where}, trusting {self.trust.describe()}>"


class _Explaining(policies.ProtocolWrapper):
    """
    Logs why TLS failed, and hands the protocol beneath a plain
    C{ConnectionLost} that says it, instead of an OpenSSL error it would
    report with a traceback.
    """

    def __init__(self, factory, wrapped, endpoint):
        super().__init__(factory, wrapped)
        self.endpoint = endpoint

    def connectionLost(self, reason):
        why = _tls_failure(reason, self.endpoint.name)
        if why is not None:
            message = (f"TLS with the driver at {self.endpoint.where} failed: {why} "
                       f"(trusting {self.endpoint.trust.describe()})")
            log.error("{message}; not connected", message=message)
            reason = Failure(error.ConnectionLost(message))
        super().connectionLost(reason)


def _tls_failure(reason, name):
    """
    Why a connection's TLS failed, or L{None} if it was not TLS that ended
    it.

    @param name: the host name or address the certificate had to bear.
    """
    from OpenSSL import SSL

    try:
        from service_identity import VerificationError
    except ImportError:  # pragma: no cover: require_tls needs it
        VerificationError = SSL.Error
    if reason.check(VerificationError):
        return f"its certificate does not name {name}"
    if reason.check(SSL.Error):
        return _reason(reason.value)
    return None


def _reason(exception):
    """
    OpenSSL's errors are lists of (library, function, reason) triples: the
    reasons say it.
    """
    args = exception.args[0] if exception.args else None
    if isinstance(args, list) and args and all(isinstance(a, tuple) for a in args):
        return "; ".join(str(a[-1]) for a in args if a and a[-1]) or repr(exception)
    return str(exception) or type(exception).__name__
