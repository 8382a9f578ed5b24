"""The runtimes: where and how a model engine's prepared pages are read (``local``: this machine;
``remote``: an OpenAI-compatible server), and what decides whether they can run here
(``availability``) and how many pages at once (``capacity``). Imports nothing of ``engines``."""
