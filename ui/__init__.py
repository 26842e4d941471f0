"""The Gradio web app (``python -m ui``).

Importing this package first sets the offline defaults (:func:`rag_qa.env.set_offline_defaults`:
no analytics, no hub telemetry, no hub calls) so they are in place before gradio or
huggingface_hub read them; a value the user already set in the environment wins.
"""

from rag_qa.env import set_offline_defaults

set_offline_defaults()
