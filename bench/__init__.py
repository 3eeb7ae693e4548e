"""The benchmark (`make bench`): this bot against a minimal async bot and the old sync bot.

Not part of `make test`: it takes minutes and measures speed, not behaviour. bench/run.py drives
it, bench/harness.py runs one bot against the fakes, bench/report.py writes docs/performance.md.
"""
