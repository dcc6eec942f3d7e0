"""Task modes: the table of modes and what each runs (tag pipeline, undo, report, review, install).

Standard library only at this level: ``ai_tagger.tasks.modes`` is imported on the hook path.
"""
