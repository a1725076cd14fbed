"""Enclave's services: settings, retrieval, answering, and the wiring that builds them."""
