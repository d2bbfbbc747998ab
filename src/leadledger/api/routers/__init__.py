"""One router per concept: leads, events (and signed webhooks), the status model, work, access."""
