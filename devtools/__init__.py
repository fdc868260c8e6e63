"""Local development tools: the SMTP sink, the MLS feed simulator and the demo."""
