"""The removals service: agents' open client relationships (leads) and their removal requests."""
