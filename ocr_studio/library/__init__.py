"""The studio as the user's document library: what was converted, found again later.

- ``search_index``: every recognised block of every job in one SQLite FTS5 index in the
  workspace, searched by word forms in English and Russian.
- ``hot_folder`` and ``job_converter``: files dropped into a folder are converted once complete.

Modules here sit above the job store (they read and run jobs; jobs never import them) and below
the UI and the CLI. This file imports nothing, so each module loads only what it needs.
"""
