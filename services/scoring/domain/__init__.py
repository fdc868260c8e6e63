"""Pure scoring rules: calendar months, stars and status; no I/O, no clock."""
