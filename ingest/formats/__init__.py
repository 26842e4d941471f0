"""One module per family of formats ingestion reads; :mod:`ingest.loaders` lists the suffixes and dispatches.

``text`` (.txt/.md), ``html``, ``pdf`` (text layer, ruled tables, OCR of scanned pages),
``images`` (.png/.jpg/.tiff through OCR), ``docx``, ``slides`` (.pptx), ``sheets`` (.xlsx,
.csv, .tsv), ``epub``, ``mail`` (.eml and its attachments); ``tables`` (rows as ``Header: value``
text) and ``ocr`` (Tesseract) are what several of them share.
"""
