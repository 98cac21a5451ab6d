"""`make bench`: run-tagger's performance figures (issue 5), measured side by side and printed as a table."""
