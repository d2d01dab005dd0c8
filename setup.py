"""
txmr: MapReduce on Twisted.

Dependencies, and why each:
  - twisted: the reactor, AMP, twistd, endpoints, twisted.web; the whole
    engine is built on it.
  - prometheus-client: the /metrics page in Prometheus' exposition format,
    which is easy to get subtly wrong by hand.
  - rich: the progress bars of `txmr run` on a terminal.
Test extras:
  - pytest and pytest-twisted: the suite is trial TestCases, which pytest
    also runs; pytest-twisted lets it run them on Twisted's reactor.
  - hypothesis: the model-based test of the scheduler (random stories of
    workers and attempts, invariants checked after every step), which finds
    the sequences no one would think to write by hand.
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
    package_data={"twisted": ["plugins/txmr_plugins.py"], "txmr.driver": ["status.html"]},
    install_requires=["twisted>=22.10", "prometheus-client>=0.17", "rich>=13"],
    extras_require={"test": ["pytest", "pytest-twisted", "hypothesis>=6"]},
    entry_points={"console_scripts": ["txmr = txmr.cli:main"]},
)
