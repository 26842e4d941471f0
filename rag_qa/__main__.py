import sys

from rag_qa.cli import main

sys.exit(main())
