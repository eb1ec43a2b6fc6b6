"""Shipped model files (installed as the package ``fervid.models``)."""
