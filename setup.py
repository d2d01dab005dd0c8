"""
txmr: MapReduce on Twisted.

Dependencies, and why each:
  - twisted: the reactor, AMP, twistd, endpoints, twisted.web; the whole
    engine is built on it.
  - prometheus-client: the /metrics page in Prometheus' exposition format,
    which is easy to get subtly wrong by hand.
  - rich: the progress bars of `txmr run` on a terminal.
The tls extra:
  - twisted[tls] (pyOpenSSL, service-identity, idna): a driver that listens
    with TLS (--listen ssl:...) and a worker that verifies it, on Twisted's
    own TLS; service-identity checks a certificate's names as RFC 6125
    says, which is easy to get subtly wrong by hand.  An extra, not a
    dependency: `txmr run` and a driver on one host need no TLS, and
    pyOpenSSL brings `cryptography`, a large compiled wheel; without it, a
    daemon asked for TLS refuses in one line that names `txmr[tls]`.
The spark extra:
  - pyspark: `txmr run --engine spark`, the same job file on a Spark
    cluster (or a local master) for users who outgrow txmr's own.  An
    extra: it is a large download and needs a Java runtime; without it,
    `--engine spark` refuses in one line that names `txmr[spark]`.
The storage extras (inputs and outputs anywhere, txmr/data/storage.py):
  - fsspec (the fsspec extra, and part of every other): --input and
    --output as URLs (s3://, gs://, hdfs://, file://, memory://) through
    one interface, each filesystem's own package behind it, rather than a
    client per store written by hand.  An extra: local paths never touch
    it (compressed local input is read by the standard library).
  - s3fs (the s3 extra): fsspec's S3 filesystem, which reads the standard
    AWS environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
  - zstandard (the zstd extra): .zst input; the standard library reads
    .gz, .bz2 and .xz itself.
Test extras:
  - pytest and pytest-twisted: the suite is trial TestCases, which pytest
    also runs; pytest-twisted lets it run them on Twisted's reactor.
  - hypothesis: the model-based test of the scheduler (random stories of
    workers and attempts, invariants checked after every step), which finds
    the sequences no one would think to write by hand.
  - twisted[tls]: the TLS tests (a job between a driver and workers that
    verify it, with a CA the test makes with `cryptography`).
  - pyspark: the Spark engine's tests (a local[2] master; Java comes from
    the system, which .ci/run installs where it is missing).
  - moto[server], s3fs, fsspec, zstandard: the storage tests
    (tests/test_storage.py) run a job on S3 through a real local S3 server
    (moto's, started and stopped by the test), with compressed input.
  - mrjob: the tests of mrjob jobs run unchanged (tests/test_mrjob.py)
    compare txmr's output and counters with those of mrjob's own inline
    runner on the same job files; the reference has to be the real thing.
    Only where it imports (up to Python 3.11); elsewhere txmr's compatible
    surface (txmr/compat) runs the same files, and those tests skip.
"""

from setuptools import find_packages, setup

setup(
    name="txmr",
    version="0.1.0",
    description="MapReduce on Twisted: an AMP driver and workers run by twistd",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # twisted/plugins is not a package of ours (no __init__.py): it is
    # Twisted's plugin folder, where our one plugin module must land.
    packages=find_packages(exclude=["tests", "tests.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/txmr_plugins.py"], "txmr.driver": ["status.html"],
                  "txmr.spark": ["log4j2.properties"]},
    install_requires=["twisted>=22.10", "prometheus-client>=0.17", "rich>=13"],
    extras_require={
        "tls": ["twisted[tls]>=22.10"],
        "spark": ["pyspark>=4"],
        "fsspec": ["fsspec>=2024"],
        "s3": ["fsspec>=2024", "s3fs"],
        "zstd": ["zstandard"],
        "test": ["pytest", "pytest-twisted", "hypothesis>=6", "twisted[tls]>=22.10",
                 "pyspark>=4", "mrjob>=0.7.4,<0.8; python_version < '3.12'",
                 "fsspec>=2024", "s3fs", "moto[server]", "zstandard"],
    },
    entry_points={"console_scripts": ["txmr = txmr.cli:main"]},
)
