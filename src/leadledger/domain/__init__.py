"""Pure domain logic: status model, durations and calendars, free of I/O and third-party imports."""
