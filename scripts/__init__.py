"""The spaCy project's scripts (project.yml) and the main job, run from the
repository root with `python -m scripts.NAME` (e.g. `python -m scripts.main`),
so that they and bench/ import each other without `sys.path` edits. Not part of
the installed spacy_hf_ner package."""
