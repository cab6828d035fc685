"""The only code that touches Delta tables: reads, writes, merges, history, time travel."""
