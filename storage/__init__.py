"""Persistence: the metadata database and the vector and BM25 indexes."""
