"""
TLS between a driver and its workers, with real processes: a CA and a
driver certificate made here, a worker that verifies the driver and runs the
job, workers that refuse a driver they cannot verify, the explicit opt-out,
and the one-line errors of a missing pyOpenSSL, a bad key and bad flags.
"""

import datetime
import ipaddress
import os
import subprocess
import sys

from twisted.internet import endpoints, reactor
from twisted.trial import unittest

from tests.cluster import EXAMPLES, Cluster, counted, twistd, write_corpus
from tests.oracle import read_output
from txmr.tls import TLSConfigError, Trust
from txmr.worker.address import TLSAddress, client_endpoint, client_endpoint_string

try:
    import OpenSSL  # noqa: F401
    import service_identity  # noqa: F401
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as e:
    NO_TLS = f"TLS support is not installed ({e.name} is missing): pip install 'txmr[tls]'"
else:
    NO_TLS = None


class CA:
    """
    A certificate authority made for one test, which signs driver
    certificates for the names it is given.
    """

    def __init__(self, directory, name):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            self._builder(self.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256()))
        self.path = self._write("ca.pem", self.certificate.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject, public_key):
        now = datetime.datetime.now(datetime.timezone.utc)
        return (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(self.name).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                               critical=False))

    def issue(self, dns=("localhost",), ips=("127.0.0.1",)):
        """
        A server certificate and its key, signed by this CA, for the names
        and addresses given (as subjectAltName).

        @return: the paths of the key and the certificate.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i))
                                                  for i in ips]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or ips)[0])])
        certificate = (
            self._builder(subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256()))
        key_path = self._write("driver-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        cert_path = self._write("driver-cert.pem",
                                certificate.public_bytes(serialization.Encoding.PEM))
        return key_path, cert_path

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path


def tls_listen(key, cert, port=0):
    quote = endpoints.quoteStringArgument
    return (f"ssl:{port}:interface=127.0.0.1:privateKey={quote(key)}"
            f":certKey={quote(cert)}")


class TLSJobTests(unittest.TestCase):
    """
    A driver listening with TLS on a certificate of the test's own CA.
    """

    skip = NO_TLS

    def start(self, maps=2):
        self.cluster = cluster = Cluster(self, maps=maps, input_dir=EXAMPLES)
        self.ca = CA(os.path.join(cluster.base, "ca"), "txmr test CA")
        key, cert = self.ca.issue()
        self.secret = os.path.join(cluster.base, "secret")
        with open(self.secret, "w") as f:
            f.write("correct horse battery staple\n")
        cluster.start_driver("--listen", tls_listen(key, cert), "--secret-file", self.secret)
        return cluster

    def worker(self, name, *flags, address=None):
        return self.cluster.start_worker(name, address, "--secret-file", self.secret, *flags)

    def assertJobDone(self, *workers):
        cluster = self.cluster
        self.assertEqual(cluster.wait(), 0, cluster.log())
        self.assertEqual(read_output(cluster.output, 2), counted(EXAMPLES))
        for name in workers:
            self.assertEqual(cluster.wait(name, 40), 0, cluster.log(name))
            self.assertIn("joined the driver", cluster.log(name))

    def status(self, url, ca_file):
        """
        C{txmr status URL}, trusting the CAs of C{ca_file} as Python's ssl
        module does: through SSL_CERT_FILE.
        """
        return subprocess.run(
            [sys.executable, "-m", "txmr.cli", "status", url, "--secret-file", self.secret],
            env=dict(os.environ, SSL_CERT_FILE=ca_file), capture_output=True, text=True,
            timeout=60, stdin=subprocess.DEVNULL)

    def test_worker_that_verifies_the_driver_runs_the_job(self):
        """
        The port file says ssl:, and a worker that reads it, given the CA,
        verifies the driver's certificate (IP address 127.0.0.1) and runs
        the job to the exact output.  The same port serves HTTPS: txmr
        status reads the job there, trusting the CA, and refuses a driver
        it cannot verify.
        """
        cluster = self.start()
        self.assertRegex(cluster.address, r"^ssl:host=127\.0\.0\.1:port=\d+$")
        url = "https://localhost:" + cluster.address.rsplit("port=", 1)[1]
        status = self.status(url, self.ca.path)
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("job txmr.examples.wordcount", status.stdout)
        stranger = CA(os.path.join(cluster.base, "other-ca"), "another CA")
        status = self.status(url, stranger.path)
        self.assertEqual(status.returncode, 1, status.stdout)
        self.assertIn("certificate verify failed", status.stderr)
        self.worker("verifier", "--ca-file", self.ca.path)
        self.assertJobDone("verifier")
        self.assertNotIn("TLS with the driver", cluster.log("verifier"))

    def test_workers_refuse_a_driver_they_cannot_verify(self):
        """
        A worker trusting another CA, one trusting the system's roots (the
        default), and one expecting another name each say why TLS failed,
        run no task and exit 1 when they give up; then a worker that names
        the driver https://localhost:PORT, with the right CA, runs the job.
        """
        cluster = self.start()
        port = cluster.address.rsplit("port=", 1)[1]
        stranger = CA(os.path.join(cluster.base, "other-ca"), "another CA")
        refusers = {
            "other-ca": (["--ca-file", stranger.path], None, "certificate verify failed"),
            "system-roots": ([], None, "certificate verify failed"),
            "other-name": (["--ca-file", self.ca.path],
                           f"ssl:host=127.0.0.1:port={port}:hostname=driver.invalid",
                           "its certificate does not name driver.invalid"),
        }
        for name, (flags, address, _) in refusers.items():
            self.worker(name, "--give-up", "2", *flags, address=address)
        for name, (_, _, reason) in refusers.items():
            self.assertEqual(cluster.wait(name, 40), 1, cluster.log(name))
            log = cluster.log(name)
            self.assertIn("TLS with the driver at 127.0.0.1:" + port + " failed: " + reason, log)
            self.assertIn("cannot reach the driver", log)
            self.assertNotIn("joined the driver", log)
            self.assertNotIn("Traceback", log)
        # Not a byte of theirs (their Hello carries the secret) reached AMP.
        self.assertNotIn("DriverProtocol connection established", cluster.log())
        self.assertEqual([n for n in os.listdir(cluster.intermediate) if n.startswith("mr-")], [])
        self.worker("verifier", "--ca-file", self.ca.path,
                    address=f"https://localhost:{port}")
        self.assertJobDone("verifier")

    def test_insecure_tls_is_an_explicit_opt_out(self):
        """
        --insecure-tls connects to a driver it cannot verify, and warns.
        """
        cluster = self.start()
        self.worker("trusting", "--insecure-tls")
        self.assertJobDone("trusting")
        self.assertIn("--insecure-tls: the certificate of the driver at 127.0.0.1:",
                      cluster.log("trusting"))


def run_daemon(*args, block_openssl=False):
    """
    Run twistd to its end; with C{block_openssl}, as if pyOpenSSL were not
    installed.
    """
    if block_openssl:
        command = [sys.executable, "-c",
                   "import sys; sys.modules['OpenSSL'] = None; "
                   "from twisted.scripts.twistd import run; run()"]
    else:
        command = twistd()
    return subprocess.run(command + ["--pidfile=", "-n"] + list(args), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


class OneLineErrorTests(unittest.TestCase):
    """
    TLS asked for and impossible: a one-line error and exit 2, before
    anything runs.
    """

    def assertOneLineError(self, result, *fragments):
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def driver(self, listen, **kwargs):
        base = os.path.abspath(self.mktemp())
        write_corpus(os.path.join(base, "in"), files=1)
        return run_daemon("txmr-driver", "--input", os.path.join(base, "in"),
                          "--intermediate", os.path.join(base, "mid"),
                          "--output", os.path.join(base, "out"), "--listen", listen, **kwargs)

    def test_driver_without_pyopenssl(self):
        result = self.driver("ssl:0:privateKey=key.pem:certKey=cert.pem", block_openssl=True)
        self.assertOneLineError(result, "txmr-driver: error: --listen 'ssl:0:",
                                "needs TLS support", "pip install 'txmr[tls]'")

    def test_worker_without_pyopenssl(self):
        result = run_daemon("txmr-worker", "--driver", "ssl:host=127.0.0.1:port=5000",
                            block_openssl=True)
        self.assertOneLineError(result, "txmr-worker: error: --driver "
                                "'ssl:host=127.0.0.1:port=5000' needs TLS support",
                                "pip install 'txmr[tls]'")

    def test_driver_with_a_missing_key(self):
        if NO_TLS:
            raise unittest.SkipTest(NO_TLS)
        result = self.driver("ssl:0:privateKey=/nonexistent/key.pem")
        self.assertOneLineError(result, "--listen 'ssl:0:privateKey=/nonexistent/key.pem'",
                                "cannot load its certificate or key", "No such file")

    def test_worker_flags(self):
        if NO_TLS:
            raise unittest.SkipTest(NO_TLS)
        tls = ["txmr-worker", "--driver", "https://localhost:5000"]
        cases = [
            (["txmr-worker", "--driver", "localhost:5000", "--ca-file", EXAMPLES],
             "--ca-file and --insecure-tls are for a TLS driver address"),
            (tls + ["--ca-file", "/nonexistent/ca.pem"], "cannot read --ca-file"),
            (tls + ["--ca-file", os.path.join(EXAMPLES, os.listdir(EXAMPLES)[0])],
             "holds no PEM certificate"),
            (tls + ["--ca-file", "ca.pem", "--insecure-tls"], "contradict each other"),
            (["txmr-worker", "--driver", "ssl:host=h:port=1:caCertsDir=/etc/ssl"],
             "trust comes from --ca-file"),
        ]
        for args, fragment in cases:
            self.assertOneLineError(run_daemon(*args), "txmr-worker: error:", fragment)


class AddressTests(unittest.SynchronousTestCase):
    """
    How a worker reads a TLS driver address.
    """

    def test_https_is_tls(self):
        self.assertEqual(client_endpoint_string("https://driver.example:5000/"),
                         "ssl:host=driver.example:port=5000")
        self.assertEqual(client_endpoint_string("http://driver.example:5000"),
                         "tcp:host=driver.example:port=5000")

    def test_fields_of_a_tls_address(self):
        self.assertEqual(
            TLSAddress.parse("ssl:host=\\:\\:1:port=5000:hostname=driver.example:timeout=5"),
            TLSAddress(host="::1", port=5000, hostname="driver.example", timeout=5))
        self.assertEqual(TLSAddress.parse("tls:driver.example:5000:bindAddress=10.0.0.2"),
                         TLSAddress(host="driver.example", port=5000, bind_address="10.0.0.2"))
        for bad in ("ssl:host=h", "ssl:port=5", "ssl:host=h:port=x", "tls:h:1:2",
                    "ssl:host=h:port=1:certKey=c.pem"):
            self.assertRaises(ValueError, TLSAddress.parse, bad)

    def test_tls_flags_need_a_tls_address(self):
        """
        A CA file given for a plain address would be ignored while the
        secret went out in clear: refused.
        """
        for trust in (Trust(ca_file="ca.pem"), Trust(insecure=True)):
            self.assertRaises(TLSConfigError, client_endpoint, reactor, "localhost:5000", trust)
        self.assertRaises(TLSConfigError, Trust, "ca.pem", True)
