"""Use cases: load what a rule needs, apply the rule, write, inside the caller's transaction."""
