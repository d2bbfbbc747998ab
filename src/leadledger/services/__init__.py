"""Service layer: one function per command; the only place that writes, so one place enforces the rules."""
