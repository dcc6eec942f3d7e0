"""Built-in analyzers, one module each; every module here is imported when the run builds its analyzers."""
