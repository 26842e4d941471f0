"""Entry point of `python -m rag_qa` (the commands are in :mod:`rag_qa.cli`)."""

import sys

from rag_qa.cli import main

sys.exit(main())
