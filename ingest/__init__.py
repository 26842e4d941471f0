"""Document ingestion: load files, chunk them with exact offsets, embed, and write the index.

The programmatic entry points are :func:`ingest.pipeline.ingest_paths` and
:func:`ingest.pipeline.remove_sources` (one machine), and :func:`ingest.ray_pipeline.ingest_paths_ray`
(a Ray cluster, into PostgreSQL; needs the ``cluster`` extra); `python -m ingest` is the command line.
"""
