"""The baseline runners (Haystack, plain LangChain, the naive HF pipeline loop) and what they share.

The runners are scripts run in their own virtualenvs (see README.md here); the benchmark scripts
one folder up import :mod:`baselines.common` for the latency percentiles.
"""
