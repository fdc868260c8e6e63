"""Pure invitation rules: no I/O, no clock; `now` and state are passed in."""
