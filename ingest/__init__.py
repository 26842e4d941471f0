"""Document ingestion: load files, chunk them with exact offsets, embed, and write the index.

The programmatic entry points are :func:`ingest.pipeline.ingest_paths` and
:func:`ingest.pipeline.remove_sources`; `python -m ingest` is the command line.  Every ingest is
plan (:mod:`ingest.plan`) -> execute -> commit (:mod:`ingest.commit`); the executor is
:class:`ingest.local_executor.LocalExecutor` on one machine or :class:`ingest.ray_pipeline.RayExecutor`
on a Ray cluster, into PostgreSQL (:func:`ingest.ray_pipeline.ingest_paths_ray`; needs the
``cluster`` extra).
"""
