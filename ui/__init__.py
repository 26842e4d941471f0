"""The Gradio web app (``python -m ui``).

Importing this package first sets the offline defaults (no analytics, no hub telemetry, no hub
calls) so they are in place before gradio or huggingface_hub read them; a value the user
already set in the environment wins.
"""

import os

OFFLINE_DEFAULTS = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
