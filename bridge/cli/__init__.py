"""The `eventbridge` command line: serve, publish, demo."""
