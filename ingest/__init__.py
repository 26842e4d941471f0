"""Document ingestion: load files, chunk them with exact offsets, embed, and write the index.

The programmatic entry points are :func:`ingest.pipeline.ingest_paths` and
:func:`ingest.pipeline.remove_sources`; `python -m ingest` is the command line.
"""
