"""The Mỹ Hào 2023 scenario: a realistic, deterministic event stream and the tools that replay it.

- `scenario.plan`: the figures each unit must show (read from `my_hao_2023.json`, plus choices);
- `scenario.generate`: the event stream that produces them (pure, seeded);
- `scenario.expected`: the figures any set of events implies, via the aggregator's pure core;
- `scenario.client`: posts events to the intake API;
- `python -m scenario`: generate, post, and wait until the reporting API shows the figures.
"""
