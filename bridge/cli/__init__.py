"""The `eventbridge` command line: one module per sub-command (`main` lists them), plus the
options they share (`options`). Each command turns its arguments into settings, calls the layer
that does the work, and prints what happened; the work itself lives below.

May import every layer of the bridge.
"""
