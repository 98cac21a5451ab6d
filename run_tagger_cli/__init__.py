"""The `run-tagger` command line: send requests, inspect and redrive the DLQ, print schemas."""
