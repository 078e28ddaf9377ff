"""The core's own providers: test doubles and baselines, registered like any plugin."""
